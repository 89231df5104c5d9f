"""What a running run is doing, in one line: read from its ``status.json`` (``lem_harness.status``).

``describe`` is pure (status + now → text) so tests pin the wording; ``read_status`` is the
tolerant reader (a file being replaced, or not written yet, reads as None).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from lem_harness.contract import STATUS_FILE, LiveStatus


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


def read_status(run_dir: Path) -> LiveStatus | None:
    try:
        return LiveStatus.model_validate_json((run_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def describe(status: LiveStatus | None, now_unix_s: float) -> str:
    """``"measuring: batch 5/12, 640 tokens · 212 W · 61 °C (0:14)"`` and the like."""
    if status is None:
        return "starting (no status from the harness yet)"
    text = _phase_text(status)
    telemetry = [
        f"{status.power_w:.0f} W" if status.power_w is not None else None,
        f"{status.temperature_c:.0f} °C" if status.temperature_c is not None else None,
    ]
    parts = [text, *(t for t in telemetry if t)]
    elapsed = format_duration(max(0.0, now_unix_s - status.phase_started_unix_s))
    return " · ".join(parts) + f" ({elapsed})"


def _phase_text(s: LiveStatus) -> str:
    if s.phase == "warmup":
        cv = f"{s.warmup_cv * 100:.1f} %" if s.warmup_cv is not None else "—"
        return f"warmup: batch {s.warmup_batches or 0}, CV {cv}"
    if s.phase == "measuring":
        total = f"/{s.batches_total}" if s.batches_total is not None else ""
        return f"measuring: batch {s.batches_done or 0}{total}, {s.output_tokens or 0} tokens"
    return {
        "starting": "starting",
        "baseline": "idle baseline",
        "loading": "loading the model",
        "writing": "writing the result",
    }[s.phase]

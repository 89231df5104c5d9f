"""Read a run's ``timeline.csv`` (columns ``contract.TIMELINE_COLUMNS``, one row per GPU per sample).

Rows that cannot be parsed are counted and skipped; a file without the required
columns raises ``TimelineError`` naming the file and the missing columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

# NVML clocks-event reasons that slow the GPU down: SW power cap (0x4), HW slowdown (0x8),
# SW thermal (0x20), HW thermal (0x40), HW power brake (0x80). Idle (0x1), application
# clocks (0x2), sync boost (0x10) and display clocks (0x100) are not throttling.
THROTTLE_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
REQUIRED = ("t_s", "gpu_uuid", "power_w")


class TimelineError(Exception):
    """A timeline file is missing or unusable."""


@dataclass
class GpuSeries:
    t_s: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    throttle: list[int] = field(default_factory=list)


@dataclass
class Timeline:
    path: Path
    rows: list[tuple[float, str, float, int]]  # t_s, gpu_uuid, power_w, throttle_reasons
    skipped_rows: int

    @property
    def gpus(self) -> list[str]:
        return list(dict.fromkeys(uuid for _, uuid, _, _ in self.rows))

    def by_gpu(self) -> dict[str, GpuSeries]:
        out: dict[str, GpuSeries] = {}
        for t, uuid, power, mask in sorted(self.rows):
            series = out.setdefault(uuid, GpuSeries())
            series.t_s.append(t)
            series.power_w.append(power)
            series.throttle.append(mask)
        return out


def read_timeline(path: Path) -> Timeline:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise TimelineError(f"{path}: missing column(s) {', '.join(missing)}")
            rows: list[tuple[float, str, float, int]] = []
            skipped = 0
            for raw in reader:
                row = _row(raw)
                if row is None:
                    skipped += 1
                else:
                    rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TimelineError(f"{path}: cannot read the timeline ({exc})") from exc
    if not rows:
        raise TimelineError(f"{path}: no usable samples")
    return Timeline(path, rows, skipped)


def _row(raw: dict[str, str | None]) -> tuple[float, str, float, int] | None:
    try:
        t = float(raw["t_s"] or "")
        power = float(raw["power_w"] or "")
    except ValueError:
        return None
    try:
        mask = int(raw.get("throttle_reasons") or 0)
    except ValueError:
        mask = 0
    return t, raw.get("gpu_uuid") or "gpu", power, mask

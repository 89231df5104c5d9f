"""``status.json``: the run's live progress, for the host's live view (``contract.LiveStatus``).

The phase (baseline, loading, warmup with its rolling CV, measuring with tokens so far, writing),
and the latest power and temperature from the sampler. Rewritten atomically, so a reader never
sees half a file; at most every ``min_interval_s`` for sampler ticks and batches, at once on a
phase change. A write that fails is logged and never fails the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lem_harness.contract import STATUS_FILE, LivePhase, LiveStatus
from lem_harness.fileio import atomic_write_json
from lem_harness.measure.sampler import TimelineRow

logger = logging.getLogger("lem_harness")


class StatusFile:
    def __init__(self, out_dir: Path, wall: Callable[[], float], min_interval_s: float = 1.0) -> None:
        self.path = out_dir / STATUS_FILE
        self._wall = wall
        self._min_interval_s = min_interval_s
        self._lock = threading.Lock()
        now = wall()
        self._status = LiveStatus(phase="starting", phase_started_unix_s=now, updated_unix_s=now)
        self._written_at: float | None = None

    @property
    def status(self) -> LiveStatus:
        return self._status

    def phase(self, name: LivePhase, **fields: Any) -> None:
        """A new phase: its counters start empty; written at once."""
        now = self._wall()
        keep = {"power_w": self._status.power_w, "temperature_c": self._status.temperature_c}
        self._set(
            LiveStatus(phase=name, phase_started_unix_s=now, updated_unix_s=now, **keep, **fields), True
        )

    def update(self, **fields: Any) -> None:
        """Progress within the phase (throttled)."""
        self._set(self._status.model_copy(update={**fields, "updated_unix_s": self._wall()}), False)

    def telemetry(self, rows: list[TimelineRow]) -> None:
        """The latest sampler rows: total power and hottest GPU (throttled)."""
        powers = [r.power_w for r in rows if r.power_w is not None]
        temps = [r.temperature_c for r in rows if r.temperature_c is not None]
        self.update(power_w=sum(powers) if powers else None, temperature_c=max(temps) if temps else None)

    def _set(self, status: LiveStatus, force: bool) -> None:
        with self._lock:
            self._status = status
            now = status.updated_unix_s
            if not force and self._written_at is not None and now - self._written_at < self._min_interval_s:
                return
            self._written_at = now
            try:
                atomic_write_json(self.path, status)
            except OSError as e:
                logger.warning("status.json not written: %s", e)

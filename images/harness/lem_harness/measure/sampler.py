"""The power timeline: a background thread sampling every GPU at a fixed rate.

One ``TimelineRow`` per GPU per tick, labelled with the current phase. The period is
never below 50 ms (NVML power updates no faster, and polling harder only costs CPU).
Ticks follow a fixed schedule on the injected monotonic clock; a tick that cannot be
taken in time is skipped, not squeezed in late, so the row count shows the shortfall
(``EnergyMeter``'s coverage). ``start``/``stop`` are idempotent; ``stop`` sets an event
and joins the thread.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path

from lem_harness.contract import TIMELINE_COLUMNS
from lem_harness.devices.base import DeviceSample, GpuDevices
from lem_harness.fileio import atomic_write_text

logger = logging.getLogger(__name__)

MIN_PERIOD_S = 0.05
MAX_RECORDED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One GPU at one tick; fields in ``contract.TIMELINE_COLUMNS`` order."""

    t_s: float  # seconds since the sampler's origin (monotonic clock)
    unix_time_s: float
    phase: str
    gpu_index: int
    gpu_uuid: str
    power_w: float | None
    temperature_c: float | None
    sm_clock_mhz: float | None
    memory_used_bytes: int | None
    utilization_pct: float | None
    throttle_reasons: int | None

    def csv_values(self) -> list[str]:
        """The row as CSV cells; a missing reading is an empty cell, never 0."""
        return ["" if value is None else str(value) for value in astuple(self)]


def sampling_period_s(rate_hz: float) -> float:
    """The sampling period for ``rate_hz``, clamped so it is never below 50 ms."""
    if not rate_hz > 0:
        raise ValueError(f"sample rate must be > 0 Hz, got {rate_hz}")
    return max(1.0 / rate_hz, MIN_PERIOD_S)


def _row(t_s: float, unix_s: float, phase: str, sample: DeviceSample) -> TimelineRow:
    return TimelineRow(
        t_s,
        unix_s,
        phase,
        sample.gpu_index,
        sample.gpu_uuid,
        sample.power_w,
        sample.temperature_c,
        sample.sm_clock_mhz,
        sample.memory_used_bytes,
        sample.utilization_pct,
        sample.throttle_reasons,
    )


class Sampler:
    """Samples ``devices`` every ``period_s`` on a daemon thread between ``start`` and ``stop``."""

    def __init__(
        self,
        devices: GpuDevices,
        rate_hz: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        *,
        origin_s: float | None = None,
        phase: str = "idle",
    ) -> None:
        self.devices = devices
        self.period_s = sampling_period_s(rate_hz)
        self.clamped = 1.0 / rate_hz < MIN_PERIOD_S
        self._clock = clock
        self._wall = wall
        self.origin_s = clock() if origin_s is None else origin_s
        self._phase = phase
        self._rows: list[TimelineRow] = []
        self._latest: list[TimelineRow] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[], object]] = []
        self.ticks = 0
        self.failed_ticks = 0
        self.errors: list[str] = []

    # ---- clock

    def to_t_s(self, clock_value: float) -> float:
        """A reading of the injected clock on the timeline's ``t_s`` axis."""
        return clock_value - self.origin_s

    def now_t_s(self) -> float:
        return self.to_t_s(self._clock())

    # ---- phases and callbacks

    @property
    def phase(self) -> str:
        return self._phase

    def set_phase(self, name: str) -> None:
        """Label the rows from the next tick on (``baseline``, ``load``, ``warmup``, ``measure`` …)."""
        self._phase = name

    def add_tick_callback(self, callback: Callable[[], object]) -> None:
        """Also call ``callback`` on every tick (e.g. a RAPL read, so counter wraps are seen)."""
        self._callbacks.append(callback)

    # ---- lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sampling (the first tick is immediate). Calling it while running does nothing."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lem-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=max(5.0, 10 * self.period_s))
            if thread.is_alive():
                logger.warning("sampler thread did not stop within its join timeout")

    def _run(self) -> None:
        next_tick = self._clock()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as e:  # a failed read must not end the timeline
                self._record_error(e)
            next_tick += self.period_s
            delay = next_tick - self._clock()
            if delay < 0:  # late: skip the ticks that can no longer be taken on time
                next_tick += math.ceil(-delay / self.period_s) * self.period_s
                delay = next_tick - self._clock()
            if self._stop.wait(max(0.0, delay)):
                break

    def _record_error(self, error: Exception) -> None:
        self.failed_ticks += 1
        self._note_error(f"{type(error).__name__}: {error}")

    def _note_error(self, message: str) -> None:
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append(message)
        logger.debug("sampler: %s", message)

    # ---- sampling

    def tick(self) -> list[TimelineRow]:
        """Take one sample of every GPU now (the thread's work; tests call it with a fake clock)."""
        before = self._clock()
        samples = self.devices.sample()
        t_s = self.to_t_s((before + self._clock()) / 2.0)
        rows = [_row(t_s, self._wall(), self._phase, sample) for sample in samples]
        with self._lock:
            self._rows.extend(rows)
            self._latest = rows
            self.ticks += 1
        for callback in self._callbacks:
            try:
                callback()
            except Exception as e:  # a callback's failure is recorded, not the tick's
                self._note_error(f"tick callback {e.__class__.__name__}: {e}")
        return rows

    def latest(self) -> list[TimelineRow]:
        """The last tick's rows (one per GPU), without copying the timeline."""
        with self._lock:
            return list(self._latest)

    def samples(self) -> list[TimelineRow]:
        """Every row so far, in time order."""
        with self._lock:
            return list(self._rows)

    def rows_between(self, start_t_s: float, end_t_s: float) -> list[TimelineRow]:
        """Rows with ``start_t_s <= t_s <= end_t_s``."""
        return [row for row in self.samples() if start_t_s <= row.t_s <= end_t_s]

    # ---- output

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TIMELINE_COLUMNS)
        writer.writerows(row.csv_values() for row in self.samples())
        return buffer.getvalue()

    def write_csv(self, path: Path | str) -> None:
        """Write the timeline (header ``contract.TIMELINE_COLUMNS``) atomically."""
        atomic_write_text(path, self.csv_text())

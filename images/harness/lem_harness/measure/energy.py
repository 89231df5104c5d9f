"""Named energy windows: the counter at the edges, the sampled power's integral beside it.

``begin(name)`` / ``end(name)`` bracket a span of work; the caller synchronises the
device first (``torch.cuda.synchronize()``), so the edges are where the work is.

- Counter energy: ``devices.energy_counter_j()`` at both edges, per GPU. Unusable — and
  then ``None`` with a warning, so the integral becomes the headline — when the GPU has no
  counter, when it was reset inside the window (``CounterResetError``, a negative delta,
  or ``devices.counter_resets()`` grew during the window: the sampler reads the counter
  on every tick as well, so a reset is seen even when the counter has climbed back above
  the start value by the end), or when it did not move at all (the window was shorter
  than the counter's update period).
- Integrated energy: the trapezoid rule over this GPU's power at the window's edges plus
  every timeline row strictly inside it. The edge values are samples the meter takes
  itself at ``begin``/``end`` (so the integral spans exactly the window, and is exact on a
  linear power curve); where an edge sample has no power, the nearest inside sample's
  value is held to the edge.
- Coverage: timeline ticks received in the window over the ticks expected from its
  duration (``floor(duration / period)``), capped at 1; ``None`` for a window shorter
  than one period. Edge samples do not count.
- Throttle reasons: the clocks-event bitmasks of every row in the window and the edge
  samples, OR-ed together.
- CPU energy: the RAPL package counter at both edges, where readable.
- Activity (``WindowEnergy.activity``): filled in by the runner from ``ActivitySource``
  snapshots taken just outside both edges (``measure/activity.py``), for ``GPU_SHARED`` and
  ``HOST_BUSY``; outside, so that reading ``/proc`` never delays an edge.
- A GPU without a single power reading in the window has no integral; the other GPUs
  keep theirs (per GPU), but the window's integrated total is then ``None``, since a
  sum over some GPUs is not the window's energy.

Window times are on the sampler's ``t_s`` axis (or, without a sampler, seconds since the
meter was built).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lem_harness.contract import WindowActivity
from lem_harness.devices.base import CounterResetError, DeviceError, DeviceSample, GpuDevices
from lem_harness.devices.rapl import RaplReader
from lem_harness.measure.sampler import Sampler, TimelineRow
from lem_harness.measure.stats import trapezoid

logger = logging.getLogger(__name__)


@dataclass
class WindowEnergy:
    """What one window measured. Energies in J per GPU UUID; ``None`` = not measured."""

    name: str
    start_s: float
    end_s: float
    duration_s: float
    counter_energy_j: dict[str, float] | None
    integrated_energy_j: dict[str, float] | None
    sample_count: int
    expected_samples: int
    coverage: float | None
    cpu_energy_j: float | None
    throttle_reasons_seen: int
    warnings: list[str] = field(default_factory=list)
    activity: WindowActivity | None = None
    gpu_count: int = 0  # GPUs measured (an integral over fewer of them has no total)

    @property
    def counter_total_j(self) -> float | None:
        return None if self.counter_energy_j is None else math.fsum(self.counter_energy_j.values())

    @property
    def integrated_total_j(self) -> float | None:
        integral = self.integrated_energy_j
        if integral is None or len(integral) < self.gpu_count:
            return None
        return math.fsum(integral.values())

    @property
    def gross_energy_j(self) -> float | None:
        """The headline: the counter where usable, else the integral, else ``None``."""
        counter = self.counter_total_j
        return counter if counter is not None else self.integrated_total_j

    @property
    def counter_vs_integral_pct(self) -> float | None:
        """(integral − counter) / counter × 100, where both exist and the counter is non-zero."""
        counter, integral = self.counter_total_j, self.integrated_total_j
        if counter is None or integral is None or counter == 0:
            return None
        return (integral - counter) / counter * 100.0


@dataclass
class _Edge:
    t_s: float
    counter_j: dict[str, float] | None
    samples: list[DeviceSample]
    cpu_j: float | None
    resets: int = 0


class EnergyMeter:
    """Opens and closes named windows over ``devices`` (and the ``sampler``'s timeline)."""

    def __init__(
        self,
        devices: GpuDevices | None,
        sampler: Sampler | None,
        clock: Callable[[], float] = time.monotonic,
        rapl: RaplReader | None = None,
    ) -> None:
        self.devices = devices
        self.sampler = sampler
        self._clock = clock
        self.rapl = rapl if rapl is not None and rapl.available() else None
        self.origin_s = sampler.origin_s if sampler is not None else clock()
        self._open: dict[str, tuple[_Edge, list[str]]] = {}
        self._has_counter = devices is not None and devices.supports_energy_counter()
        if sampler is not None and self.rapl is not None:
            sampler.add_tick_callback(self.rapl.read_energy_j)  # so RAPL wraps are seen in long windows
        if (
            sampler is not None
            and devices is not None
            and self._has_counter
            and devices.watch_counter_on_tick
        ):
            sampler.add_tick_callback(devices.energy_counter_j)  # so resets inside a window are seen

    def begin(self, name: str) -> None:
        """Open window ``name`` (names are unique among open windows)."""
        if name in self._open:
            raise ValueError(f"energy window {name!r} is already open")
        warnings: list[str] = []
        counter = self._read_counter(warnings, at_end=False)
        t_s = self._clock() - self.origin_s
        edge = _Edge(t_s, counter, self._edge_samples(warnings), self._read_cpu(warnings))
        edge.resets = self._resets()
        self._open[name] = (edge, warnings)

    def end(self, name: str) -> WindowEnergy:
        """Close window ``name`` and return what it measured."""
        if name not in self._open:
            raise ValueError(f"energy window {name!r} is not open (open: {sorted(self._open)})")
        start, warnings = self._open.pop(name)
        t_s = self._clock() - self.origin_s
        counter = self._read_counter(warnings, at_end=True)
        end = _Edge(t_s, counter, self._edge_samples(warnings), self._read_cpu(warnings))
        end.resets = self._resets()
        if counter is not None and end.resets > start.resets:
            warnings.append(
                "an energy counter was reset inside the window (seen by the sampler); "
                "using the power integral"
            )
            end.counter_j = None
        return self._window(name, start, end, warnings)

    def _resets(self) -> int:
        return 0 if self.devices is None else self.devices.counter_resets()

    # ---- edges

    def _read_counter(self, warnings: list[str], *, at_end: bool) -> dict[str, float] | None:
        if self.devices is None or not self._has_counter:
            return None
        try:
            return self.devices.energy_counter_j()
        except CounterResetError as e:
            if not at_end:
                return e.readings or None  # reset before the window opened: these values are the start
            warnings.append(f"{e}")
        except DeviceError as e:
            warnings.append(f"energy counter unreadable ({e}); using the power integral")
        return None

    def _edge_samples(self, warnings: list[str]) -> list[DeviceSample]:
        if self.devices is None or self.sampler is None:
            return []
        try:
            return self.devices.sample()
        except DeviceError as e:
            warnings.append(f"edge power sample failed ({e}); holding the nearest timeline sample")
            return []

    def _read_cpu(self, warnings: list[str]) -> float | None:
        if self.rapl is None:
            return None
        try:
            return self.rapl.read_energy_j()
        except DeviceError as e:
            warnings.append(f"RAPL unreadable ({e}); no CPU energy for this window")
            return None

    # ---- the window

    def _window(self, name: str, start: _Edge, end: _Edge, warnings: list[str]) -> WindowEnergy:
        duration = end.t_s - start.t_s
        rows = self.sampler.rows_between(start.t_s, end.t_s) if self.sampler is not None else []
        power = _power_by_gpu(rows, self._uuids())
        received, expected, coverage = self._coverage(power, duration)
        return WindowEnergy(
            name=name,
            start_s=start.t_s,
            end_s=end.t_s,
            duration_s=duration,
            counter_energy_j=_counter_delta(start.counter_j, end.counter_j, duration, warnings),
            integrated_energy_j=self._integrate(power, start, end, warnings),
            sample_count=received,
            expected_samples=expected,
            coverage=coverage,
            cpu_energy_j=None if start.cpu_j is None or end.cpu_j is None else end.cpu_j - start.cpu_j,
            throttle_reasons_seen=_or_reasons(rows, start.samples + end.samples),
            warnings=warnings,
            gpu_count=len(self._uuids()),
        )

    def _coverage(
        self, power: dict[str, list[tuple[float, float]]], duration_s: float
    ) -> tuple[int, int, float | None]:
        if self.sampler is None or self.devices is None:
            return 0, 0, None
        received = min((len(series) for series in power.values()), default=0)
        expected = math.floor(duration_s / self.sampler.period_s + 1e-6)  # tolerate clock rounding
        coverage = None if expected <= 0 else min(1.0, received / expected)
        return received, expected, coverage

    def _integrate(
        self, power: dict[str, list[tuple[float, float]]], start: _Edge, end: _Edge, warnings: list[str]
    ) -> dict[str, float] | None:
        if self.sampler is None or self.devices is None:
            return None
        out: dict[str, float] = {}
        for uuid, series in power.items():
            inside = [(t, p) for t, p in series if start.t_s < t < end.t_s]
            points = _edge_point(start, uuid) + inside + _edge_point(end, uuid)
            if not points:
                warnings.append(
                    f"no power samples of {uuid} in window: no integral for it (the other GPUs keep theirs)"
                )
                continue
            # hold the first and last values out to the edges where an edge sample is missing
            times = [start.t_s, *(t for t, _ in points), end.t_s]
            powers = [points[0][1], *(p for _, p in points), points[-1][1]]
            out[uuid] = trapezoid(times, powers)
        return out or None

    def _uuids(self) -> list[str]:
        return [] if self.devices is None else self.devices.uuids()


def _power_by_gpu(rows: Sequence[TimelineRow], uuids: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """Each GPU's (t_s, power_w) readings, in time order, missing readings left out."""
    power: dict[str, list[tuple[float, float]]] = {uuid: [] for uuid in uuids}
    for row in rows:
        if row.power_w is not None and row.gpu_uuid in power:
            power[row.gpu_uuid].append((row.t_s, row.power_w))
    return power


def _edge_point(edge: _Edge, uuid: str) -> list[tuple[float, float]]:
    return [(edge.t_s, s.power_w) for s in edge.samples if s.gpu_uuid == uuid and s.power_w is not None]


def _counter_delta(
    start: dict[str, float] | None, end: dict[str, float] | None, duration_s: float, warnings: list[str]
) -> dict[str, float] | None:
    if start is None or end is None:
        return None
    if not start or set(start) != set(end):
        warnings.append(
            "the energy counters read at the window's edges name different GPUs; using the integral"
        )
        return None
    delta = {uuid: end[uuid] - start[uuid] for uuid in start}
    if any(value < 0 for value in delta.values()):
        warnings.append(
            "an energy counter went backwards inside the window (reset); using the power integral"
        )
        return None
    if duration_s > 0 and any(value == 0 for value in delta.values()):
        warnings.append(
            f"an energy counter did not move in {duration_s:.3f} s: the window is shorter than the counter's "
            "update period; using the power integral"
        )
        return None
    return delta


def _or_reasons(rows: Sequence[TimelineRow], edges: Sequence[DeviceSample]) -> int:
    mask = 0
    for reasons in [r.throttle_reasons for r in rows] + [s.throttle_reasons for s in edges]:
        if reasons is not None:
            mask |= reasons
    return mask

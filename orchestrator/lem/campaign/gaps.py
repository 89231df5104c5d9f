"""Gaps between runs: fixed sleeps, or thermal gaps that end once the GPUs are back near idle.

A thermal gap waits at least ``thermal.min_gap_seconds``, then polls every GPU the campaign
uses every ``thermal.poll_interval_seconds`` and ends as soon as each is within
``temperature_tolerance_c`` of its idle temperature and ``power_tolerance_w`` of its idle
power (``thermal``), or, with ``end_when_settled``, as soon as each is either that or settled:
cooling seen during this gap, its predicted further drop (``lem.campaign.settling``) within
the temperature tolerance, and its power near idle (``settled``); with ``end_at_warmest_start``,
also as soon as each is that or no warmer than at the start of an earlier run of this campaign,
power near idle (``warmest_start``: the spread of start temperatures cannot grow, so a gap
longer than the one that set it need not cool further). The configured gap is the
maximum. The idle reference is the first reading of the campaign, lowered by each run's
measured idle baseline. Without NVML on the host, thermal mode says so once and falls back
to fixed gaps.

GPU telemetry enters through the small ``GpuProbe`` protocol; the real probe reads NVML
through ``lem_harness.devices.nvml`` (the project's only pynvml importer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lem.campaign.clock import Clock, sleep_unless_stopped
from lem.campaign.settling import is_settled
from lem.config.campaign import ExecutionConfig, ThermalGapConfig
from lem_harness.contract import BaselineMetrics
from lem_harness.devices.base import DeviceError

SENSOR_RESOLUTION_C = 1.0  # NVML reports whole degrees Celsius
GapEnd = Literal["none", "fixed", "thermal", "settled", "warmest_start", "cap", "stopped"]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class GpuReading:
    uuid: str
    temperature_c: float | None
    power_w: float | None


class GpuProbe(Protocol):
    """Reads the campaign's GPUs from the host between runs."""

    def read(self) -> list[GpuReading]: ...

    def close(self) -> None: ...


ProbeFactory = Callable[[Sequence[str]], GpuProbe]


class NvmlProbe:
    """The real probe: NVML on the host, GPUs addressed by UUID."""

    def __init__(self, uuids: Sequence[str]) -> None:
        from lem_harness.devices.nvml import open_nvml_by_uuid

        self._devices = open_nvml_by_uuid(list(uuids))

    def read(self) -> list[GpuReading]:
        return [GpuReading(s.gpu_uuid, s.temperature_c, s.power_w) for s in self._devices.sample()]

    def close(self) -> None:
        self._devices.close()


@dataclass(frozen=True)
class GapRecord:
    """What one gap did: seconds actually waited, why it ended, GPU temperatures at its end."""

    waited_s: float
    ended_by: GapEnd
    start_temperature_c: dict[str, float] | None


@dataclass
class IdleReference:
    """Per GPU UUID, the coolest idle temperature and lowest idle power seen."""

    temperature_c: dict[str, float] = field(default_factory=dict)
    power_w: dict[str, float] = field(default_factory=dict)

    def lower(self, temperatures: dict[str, float], powers: dict[str, float]) -> None:
        for uuid, value in temperatures.items():
            self.temperature_c[uuid] = min(value, self.temperature_c.get(uuid, value))
        for uuid, value in powers.items():
            self.power_w[uuid] = min(value, self.power_w.get(uuid, value))

    def is_near(self, readings: Sequence[GpuReading], thermal: ThermalGapConfig) -> bool:
        """Whether every GPU is within tolerance of idle (an unreadable value never is)."""
        return bool(readings) and all(self._gpu_near(r, thermal) for r in readings)

    def _gpu_near(self, reading: GpuReading, thermal: ThermalGapConfig) -> bool:
        idle_t = self.temperature_c.get(reading.uuid)
        if reading.temperature_c is None or idle_t is None:
            return False
        if reading.temperature_c > idle_t + thermal.temperature_tolerance_c:
            return False
        return self.power_near(reading, thermal)

    def power_near(self, reading: GpuReading, thermal: ThermalGapConfig) -> bool:
        """Whether the power is within tolerance of idle (true when either is unknown)."""
        idle_p = self.power_w.get(reading.uuid)
        if idle_p is None or reading.power_w is None:
            return True
        return reading.power_w <= idle_p + thermal.power_tolerance_w


@dataclass
class CoolingHistory:
    """Per GPU UUID, the temperatures polled during one gap (a missing reading starts it over)."""

    temperature_c: dict[str, list[float]] = field(default_factory=dict)

    def add(self, readings: Sequence[GpuReading]) -> None:
        for reading in readings:
            if reading.temperature_c is None:
                self.temperature_c.pop(reading.uuid, None)
            else:
                self.temperature_c.setdefault(reading.uuid, []).append(reading.temperature_c)

    def settled(self, uuid: str, tolerance_c: float) -> bool:
        return is_settled(self.temperature_c.get(uuid, []), tolerance_c, SENSOR_RESOLUTION_C)


def _temperatures(readings: Sequence[GpuReading]) -> dict[str, float]:
    return {r.uuid: r.temperature_c for r in readings if r.temperature_c is not None}


def _powers(readings: Sequence[GpuReading]) -> dict[str, float]:
    return {r.uuid: r.power_w for r in readings if r.power_w is not None}


class GapWaiter:
    """Waits out the gap before each run and records what it did."""

    def __init__(
        self,
        execution: ExecutionConfig,
        clock: Clock,
        stop: threading.Event,
        *,
        probe: GpuProbe | None,
        warn: Warn,
    ) -> None:
        self._execution = execution
        self._clock = clock
        self._stop = stop
        self._probe = probe
        self._warn = warn
        self.mode: Literal["fixed", "thermal"] = execution.gap_mode
        if self.mode == "thermal" and probe is None:
            self.mode = "fixed"
        self.idle = IdleReference()
        self.warmest_start_c: dict[str, float] = {}  # per GPU UUID, the warmest start of a run so far
        self.latest: list[GpuReading] = []  # the last readings taken (the live view shows them)
        self._calibrate()

    def wait(self, seconds: float) -> GapRecord:
        """Wait before a run whose configured gap is ``seconds`` (the maximum in thermal mode)."""
        if seconds <= 0:
            record = GapRecord(0.0, "none", _temperatures(self._read()) or None)
        elif self.mode == "thermal":
            record = self._wait_thermal(seconds)
        else:
            waited = sleep_unless_stopped(self._clock, seconds, self._stop)
            ended: GapEnd = "stopped" if self._stop.is_set() else "fixed"
            record = GapRecord(waited, ended, _temperatures(self._read()) or None)
        if record.ended_by != "stopped":  # the next run starts at these temperatures
            self._note_start(record.start_temperature_c or {})
        return record

    def status_line(self) -> str | None:
        """Thermal mode: each GPU's last temperature against the one that ends the gap."""
        if self.mode != "thermal" or not self.latest:
            return None
        thermal = self._execution.thermal
        parts = []
        for reading in self.latest:
            idle = self.idle.temperature_c.get(reading.uuid)
            now = f"{reading.temperature_c:.0f} °C" if reading.temperature_c is not None else "? °C"
            ends = None if idle is None else idle + thermal.temperature_tolerance_c
            warmest = self.warmest_start_c.get(reading.uuid)
            if thermal.end_at_warmest_start and ends is not None and warmest is not None:
                ends = max(ends, warmest)
            target = f" → ≤ {ends:.0f} °C" if ends is not None else ""
            parts.append(f"{reading.uuid[:12]} {now}{target}")
        return "; ".join(parts)

    def observe_baseline(self, baseline: BaselineMetrics | None) -> None:
        """Lower the idle reference with a run's measured idle temperatures and powers."""
        if baseline is not None:
            self.idle.lower(dict(baseline.idle_temperature_c), dict(baseline.per_gpu_idle_power_w))

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    # ------------------------------------------------------------------ internals

    def _calibrate(self) -> None:
        readings = self._read()
        self.idle.lower(_temperatures(readings), _powers(readings))
        if self.mode == "thermal" and not self.idle.temperature_c:
            self._fall_back("the GPUs report no temperature")

    def _wait_thermal(self, cap: float) -> GapRecord:
        thermal = self._execution.thermal
        start = self._clock.monotonic()
        sleep_unless_stopped(self._clock, min(thermal.min_gap_seconds, cap), self._stop)
        readings: list[GpuReading] = []
        history = CoolingHistory()
        ended: GapEnd = "cap"
        while True:
            if self._stop.is_set():
                ended = "stopped"
                break
            readings = self._read()
            history.add(readings)
            end = self._thermal_end(readings, history) if self.mode == "thermal" else None
            if end is not None:
                ended = end
                break
            left = cap - (self._clock.monotonic() - start)
            if left <= 0:
                break
            step = left if self.mode == "fixed" else min(thermal.poll_interval_seconds, left)
            sleep_unless_stopped(self._clock, step, self._stop)
        waited = self._clock.monotonic() - start
        return GapRecord(waited, ended, _temperatures(readings) or None)

    def _note_start(self, temperatures: dict[str, float]) -> None:
        for uuid, value in temperatures.items():
            self.warmest_start_c[uuid] = max(value, self.warmest_start_c.get(uuid, value))

    def _thermal_end(self, readings: Sequence[GpuReading], history: CoolingHistory) -> GapEnd | None:
        """``thermal`` when every GPU is near idle; else ``settled`` when each is near idle or settled;
        else ``warmest_start`` when each is near idle, settled or no warmer than an earlier run's
        start; a GPU that is not near idle needs its power near idle too. ``None`` otherwise."""
        thermal = self._execution.thermal
        if self.idle.is_near(readings, thermal):
            return "thermal"
        near = {r.uuid for r in readings if self.idle.is_near([r], thermal)}
        idle_power = {r.uuid for r in readings if self.idle.power_near(r, thermal)}

        def each(passes: set[str]) -> bool:
            return bool(readings) and all(
                r.uuid in near or (r.uuid in passes and r.uuid in idle_power) for r in readings
            )

        settled: set[str] = set()
        if thermal.end_when_settled:
            settled = {r.uuid for r in readings if history.settled(r.uuid, thermal.temperature_tolerance_c)}
            if each(settled):
                return "settled"
        if thermal.end_at_warmest_start:
            no_warmer = {r.uuid for r in readings if self._no_warmer_than_a_start(r)}
            if each(settled | no_warmer):
                return "warmest_start"
        return None

    def _no_warmer_than_a_start(self, reading: GpuReading) -> bool:
        warmest = self.warmest_start_c.get(reading.uuid)
        return reading.temperature_c is not None and warmest is not None and reading.temperature_c <= warmest

    def _read(self) -> list[GpuReading]:
        if self._probe is None:
            return []
        try:
            self.latest = self._probe.read()
            return self.latest
        except DeviceError as e:
            self._fall_back(f"reading the GPUs failed ({e})")
            self.close()
            return []

    def _fall_back(self, reason: str) -> None:
        if self.mode == "thermal":
            self._warn(f"thermal gaps: {reason}; falling back to fixed gaps of the configured length")
            self.mode = "fixed"


def open_gap_waiter(
    execution: ExecutionConfig,
    gpu_uuids: Sequence[str],
    *,
    clock: Clock,
    stop: threading.Event,
    warn: Warn,
    probe_factory: ProbeFactory = NvmlProbe,
) -> GapWaiter:
    """A gap waiter for the campaign's GPUs; NVML missing on the host is said once, in thermal mode."""
    probe: GpuProbe | None = None
    if gpu_uuids:
        try:
            probe = probe_factory(gpu_uuids)
        except (DeviceError, ImportError) as e:
            if execution.gap_mode == "thermal":
                warn(f"thermal gaps need NVML on the host ({e}); falling back to fixed gaps")
    elif execution.gap_mode == "thermal":
        warn("thermal gaps need the GPUs' UUIDs and none are known here; falling back to fixed gaps")
    return GapWaiter(execution, clock, stop, probe=probe, warn=warn)

"""Fakes for the measurement tests: a settable clock and a scripted GPU set."""

from __future__ import annotations

from collections.abc import Callable

from lem_harness.contract import GpuInfo
from lem_harness.devices.base import CounterResetError, DeviceError, DeviceSample, GpuDevices


class FakeClock:
    """A clock that moves only when told; ``sleep`` advances it."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class ScriptedDevices(GpuDevices):
    """One GPU whose readings are functions of the fake clock; counters come from a list."""

    kind = "fake"

    def __init__(
        self,
        clock: FakeClock,
        *,
        power_w: Callable[[float], float | None] = lambda t: 100.0,
        reasons: Callable[[float], int | None] = lambda t: 0,
        counters_j: list[float] | None = None,
        uuid: str = "GPU-FAKE-0",
    ) -> None:
        self.clock = clock
        self._power = power_w
        self._reasons = reasons
        self.counters_j = counters_j
        self.uuid = uuid
        self.fail_sample = False
        self._last: float | None = None

    def info(self) -> list[GpuInfo]:
        return [GpuInfo(index=0, uuid=self.uuid, name="Fake GPU")]

    def supports_energy_counter(self) -> bool:
        return self.counters_j is not None

    def energy_counter_j(self) -> dict[str, float]:
        assert self.counters_j is not None
        value = self.counters_j.pop(0)
        previous, self._last = self._last, value
        if previous is not None and value < previous:
            error = CounterResetError(self.uuid, previous, value)
            error.readings = {self.uuid: value}
            raise error
        return {self.uuid: value}

    def sample(self) -> list[DeviceSample]:
        if self.fail_sample:
            raise DeviceError("scripted failure")
        t = self.clock()
        return [DeviceSample(0, self.uuid, self._power(t), 40.0, 1000.0, 1, 50.0, self._reasons(t))]

    def power_sources(self) -> dict[str, str]:
        return {self.uuid: "fake"}

    def driver_version(self) -> str | None:
        return None

    def cuda_version(self) -> str | None:
        return None

    def close(self) -> None:
        pass

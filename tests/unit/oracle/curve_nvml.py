"""One fake pynvml for lem's harness and Zeus alike: GPUs whose power follows a known curve.

It answers in NVML's units and ways: the total-energy counter in integer mJ since the
driver loaded, refreshed only every ``update_period_s`` (so a window shorter than that
can read no change), restarting from 0 at ``reset_at`` (a driver reload); the instant
power field through ``nvmlDeviceGetFieldValues`` in mW with a per-field return code;
``NVMLError`` with ``NotSupported`` for what an H100 does not offer. Time is a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pynvml as real  # the one test-side import: constants, ctypes structs and error classes

from lem_harness.devices.simulated import PowerCurve


class CurveNvml:
    """Stands in for the ``pynvml`` module; patch the same instance at every import site."""

    def __init__(
        self,
        clock: Callable[[], float],
        n_gpus: int,
        curve: PowerCurve,
        *,
        origin_s: float,
        update_period_s: float = 0.1,
        reset_at: float | None = None,
    ) -> None:
        self.clock, self.n_gpus, self.curve = clock, n_gpus, curve
        self.origin_s, self.update_period_s, self.reset_at = origin_s, update_period_s, reset_at

    # ---- the curve (tests read these)

    def energy_j(self, gpu: int, t: float) -> float:
        return self.curve.energy_j(gpu, t - self.origin_s)

    def exact_j(self, t0: float, t1: float, gpu: int | None = None) -> float:
        gpus = range(self.n_gpus) if gpu is None else [gpu]
        return math.fsum(self.energy_j(i, t1) - self.energy_j(i, t0) for i in gpus)

    # ---- module attributes

    def __getattr__(self, name: str) -> Any:
        value = getattr(real, name)
        if name.startswith(("NVML_", "c_nvml", "NVMLError", "_nvml")) or isinstance(value, type):
            return value
        return self._not_supported

    @staticmethod
    def _not_supported(*args: Any) -> Any:
        raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)

    # ---- lifecycle and identity

    def nvmlInit(self) -> None:
        return None

    def nvmlShutdown(self) -> None:
        return None

    def nvmlDeviceGetCount(self) -> int:
        return self.n_gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < self.n_gpus:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetIndex(self, handle: int) -> int:
        return handle

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-ORACLE-{handle}"

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetArchitecture(self, handle: int) -> int:
        return int(real.NVML_DEVICE_ARCH_HOPPER)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.124.06"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    # ---- energy and power

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        """mJ since the driver loaded (or since ``reset_at``), as of the counter's last refresh."""
        now = self.clock()
        refreshed = (
            self.origin_s + math.floor((now - self.origin_s) / self.update_period_s) * self.update_period_s
        )
        since = self.origin_s
        if self.reset_at is not None and now >= self.reset_at:
            since = self.reset_at
            refreshed = max(refreshed, self.reset_at)
        return int((self.energy_j(handle, refreshed) - self.energy_j(handle, since)) * 1000.0)

    def _power_mw(self, handle: int) -> int:
        return round(self.curve.power_w(handle, self.clock() - self.origin_s) * 1000.0)

    def nvmlDeviceGetFieldValues(self, handle: int, fields: list[tuple[int, int]]) -> list[Any]:
        out = []
        for field_id, _scope in fields:
            value = real.c_nvmlFieldValue_t()
            value.fieldId = field_id
            if field_id == real.NVML_FI_DEV_POWER_INSTANT:
                value.nvmlReturn = real.NVML_SUCCESS
                value.value.uiVal = self._power_mw(handle)
            else:
                value.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
            out.append(value)
        return out

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        now = self.clock()  # a 1 s moving average, as recent GPUs report
        return round((self.energy_j(handle, now) - self.energy_j(handle, now - 1.0)) * 1000.0)

    # ---- telemetry the harness samples

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 45

    def nvmlDeviceGetClockInfo(self, handle: int, kind: int) -> int:
        return 1980

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=2**30, total=80 * 2**30, free=79 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=100, memory=50)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return []

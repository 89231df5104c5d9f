"""Energy and telemetry sources: NVML (real GPUs), RAPL (CPU package), simulated (tests, demos).

``open_devices`` is the one entry point the runner uses. pynvml is imported only by
``devices/nvml.py``, and only when NVML is actually asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence

from lem_harness.cpus import usable_cpus
from lem_harness.devices.base import (
    CounterResetError,
    DeviceError,
    DeviceNotSupportedError,
    DeviceSample,
    DeviceUnavailableError,
    GpuDevices,
)
from lem_harness.devices.simulated import LoadFollowingDevices, SimulatedDevices
from lem_harness.experiment import MeasurementConfig

SIMULATED_ENV = "LEM_SIMULATED_DEVICE"

__all__ = [
    "SIMULATED_ENV",
    "CounterResetError",
    "DeviceError",
    "DeviceNotSupportedError",
    "DeviceSample",
    "DeviceUnavailableError",
    "GpuDevices",
    "LoadFollowingDevices",
    "SimulatedDevices",
    "open_devices",
]


def open_devices(
    measurement: MeasurementConfig,
    gpu_ids: Sequence[int],
    env: Mapping[str, str] = os.environ,
    clock: Callable[[], float] = time.monotonic,
    cpu_clock: Callable[[], float] | None = None,
) -> tuple[GpuDevices | None, list[str]]:
    """The run's GPUs and warnings about them; ``None`` when there is no sensor.

    The simulated device is used only when asked for (``measurement.device: simulated``
    or ``LEM_SIMULATED_DEVICE=1``). With ``device: auto`` a missing NVML gives ``None``
    and a warning (energy fields are then null, never 0); with ``device: nvml`` it raises
    ``DeviceUnavailableError``.

    Given ``cpu_clock`` (the harness process passes ``time.process_time``), the simulated
    GPUs' power follows the process's CPU load (``LoadFollowingDevices``); without it, the
    deterministic curve of ``clock`` (``SimulatedDevices``, for tests with a fake clock).
    """
    if measurement.device == "simulated" or env.get(SIMULATED_ENV) == "1":
        n_gpus = max(1, len(gpu_ids))
        if cpu_clock is None:
            return SimulatedDevices(n_gpus=n_gpus, clock=clock), [
                "simulated GPU: energy and power figures come from a synthetic curve (tests and demos only)"
            ]
        return LoadFollowingDevices(n_gpus, clock, cpu_clock=cpu_clock, cpus=usable_cpus()), [
            "simulated GPU: energy and power figures are synthetic, following this process's CPU load "
            "(tests and demos only)"
        ]
    from lem_harness.devices.nvml import open_nvml

    try:
        return open_nvml(gpu_ids, env)
    except DeviceUnavailableError as e:
        if measurement.device == "nvml":
            raise
        return None, [f"no GPU energy sensor: {e}. Energy fields are null"]

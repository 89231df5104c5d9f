"""What every energy and telemetry source offers: the ``GpuDevices`` boundary.

A ``GpuDevices`` is the set of GPUs one run measures, opened once and closed once.
Readings carry SI units in their names (joules, watts, degrees Celsius, bytes, MHz).
Telemetry a device cannot report is ``None``, never 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

from lem_harness.contract import GpuInfo


class DeviceError(Exception):
    """A sensor failed; the message says what failed and what to do."""


class DeviceUnavailableError(DeviceError):
    """No usable sensor in this process (no driver, no library, no GPU visible)."""


class DeviceNotSupportedError(DeviceError):
    """The device does not offer this reading (NVML ``NotSupported``)."""


class CounterResetError(DeviceError):
    """A cumulative energy counter went backwards (driver reload, GPU reset, wrap)."""

    def __init__(self, gpu_uuid: str, previous_j: float, current_j: float) -> None:
        super().__init__(
            f"energy counter of {gpu_uuid} went backwards ({previous_j:.3f} J -> {current_j:.3f} J): "
            "the counter was reset; windows spanning the reset fall back to the power integral"
        )
        self.gpu_uuid = gpu_uuid
        self.previous_j = previous_j
        self.current_j = current_j
        self.readings: dict[str, float] = {}  # every GPU's reading taken in the same call


@dataclass(frozen=True)
class DeviceSample:
    """One reading of one GPU's telemetry; ``None`` where the device cannot say."""

    gpu_index: int
    gpu_uuid: str
    power_w: float | None
    temperature_c: float | None
    sm_clock_mhz: float | None
    memory_used_bytes: int | None
    utilization_pct: float | None
    throttle_reasons: int | None


class GpuDevices(ABC):
    """The GPUs one run measures. Implementations: NVML (real) and simulated (tests, demos)."""

    kind: str
    # Read the energy counter on every sampler tick too, so a reset inside a window is seen
    # (``counter_resets``). Real counters only: scripted fakes answer a fixed list of reads.
    watch_counter_on_tick: bool = False

    @abstractmethod
    def info(self) -> list[GpuInfo]:
        """Static facts per GPU (UUID, name, limits, clocks), in measurement order."""

    @abstractmethod
    def supports_energy_counter(self) -> bool:
        """Whether every GPU has a cumulative energy counter (NVML: Volta and newer)."""

    @abstractmethod
    def energy_counter_j(self) -> dict[str, float]:
        """UUID -> cumulative joules. Raises ``CounterResetError`` when a counter went backwards."""

    @abstractmethod
    def sample(self) -> list[DeviceSample]:
        """One telemetry reading per GPU, in measurement order."""

    @abstractmethod
    def power_sources(self) -> dict[str, str]:
        """UUID -> which power reading ``sample`` returns (e.g. ``nvml_instant``, ``nvml_average_1s``)."""

    @abstractmethod
    def driver_version(self) -> str | None:
        """The GPU driver version, where known."""

    @abstractmethod
    def cuda_version(self) -> str | None:
        """The CUDA version the driver supports (``"12.4"``), where known."""

    @abstractmethod
    def close(self) -> None:
        """Release the sensor. Idempotent."""

    def counter_resets(self) -> int:
        """How many times an energy counter was seen going backwards so far (0 by default)."""
        return 0

    def compute_processes(self) -> dict[str, list[int]]:
        """UUID -> PIDs of the compute processes running on that GPU (none known by default)."""
        return {}

    def power_read_failures(self) -> dict[str, int]:
        """UUID -> power reads that failed or fell back to a secondary field (none by default)."""
        return {}

    def uuids(self) -> list[str]:
        """The GPUs' UUIDs, in measurement order."""
        return [gpu.uuid for gpu in self.info()]

    def __enter__(self) -> GpuDevices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

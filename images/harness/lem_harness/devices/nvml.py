"""NVIDIA GPUs through NVML (nvidia-ml-py). The only module in the project that imports pynvml.

Every NVML error becomes a ``DeviceError`` here (``raise … from e``). Readings a GPU
does not offer (``NotSupported``, ``FunctionNotFound`` on older drivers, ``NoPermission``)
are ``None`` and are not asked again.

- Energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and
  newer), converted to J. A reading lower than the previous one raises
  ``CounterResetError`` and adds one to ``counter_resets()``; the sampler reads the counter
  on every tick too, so a reset inside a long window is seen even when the counter has
  climbed back above the window's start value by its end. Reads are serialised (a lock),
  so the sampler thread and the window edges never compare out of order.
- Power: the instant power field (``NVML_FI_DEV_POWER_INSTANT`` through
  ``nvmlDeviceGetFieldValues``) where the driver has it, else ``nvmlDeviceGetPowerUsage``,
  which recent GPUs report as a ~1 s moving average. ``power_sources()`` says which. A
  failed instant read (any code but ``NotSupported``) is retried once, then that sample
  falls back to the averaged field; both are counted (``power_read_failures``), and a
  sample whose power is still unreadable has ``power_w = None``, which lowers the
  window's coverage (``LOW_SAMPLE_COVERAGE``). One failure never disables power for the
  rest of the run.
- Clocks-event (throttle) reasons: ``nvmlDeviceGetCurrentClocksEventReasons``, falling back
  to the older ``…ClocksThrottleReasons`` name.
- Grace Hopper module power scope is not handled: the GPU scope is read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pynvml

from lem_harness.contract import GpuInfo
from lem_harness.devices.base import (
    CounterResetError,
    DeviceError,
    DeviceNotSupportedError,
    DeviceSample,
    DeviceUnavailableError,
    GpuDevices,
)
from lem_harness.devices.visible import NvmlGpuId, cuda_view, select_gpus

logger = logging.getLogger(__name__)
T = TypeVar("T")

POWER_INSTANT = "nvml_instant"
POWER_AVERAGE = "nvml_average_1s"

_SIMULATE_HINT = "without a GPU, set measurement.device: simulated (tests and demos only)"
_INIT_HINTS: dict[int, str] = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: (
        "the NVIDIA management library (libnvidia-ml.so.1) was not found: no NVIDIA driver is visible to "
        "this process. In Docker, give the container the GPU (a DeviceRequest / --gpus) with "
        f"NVIDIA_DRIVER_CAPABILITIES=compute,utility; {_SIMULATE_HINT}"
    ),
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: (
        f"the NVIDIA kernel driver is not loaded: check `nvidia-smi` on the host; {_SIMULATE_HINT}"
    ),
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
        "the NVML library and the kernel driver have different versions (driver upgraded without a "
        "reboot, or a container with its own libnvidia-ml): reboot or use the host's driver libraries"
    ),
    pynvml.NVML_ERROR_NO_PERMISSION: "no permission to open the GPU devices (/dev/nvidia*)",
}
# Codes that mean "this GPU or driver does not offer the reading".
_ABSENT_CODES = frozenset(
    {pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, pynvml.NVML_ERROR_NO_PERMISSION}
)
_UNAVAILABLE_CODES = frozenset(
    {pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED, pynvml.NVML_ERROR_GPU_IS_LOST}
)


# --------------------------------------------------------------------------- errors


def _code(error: Exception) -> int | None:
    value = getattr(error, "value", None)
    return value if isinstance(value, int) else None


def translate_error(error: Exception, what: str) -> DeviceError:
    """The project's exception for an NVML error raised while doing ``what``."""
    code = _code(error)
    if code in _ABSENT_CODES:
        return DeviceNotSupportedError(f"{what}: not offered by this GPU or driver ({error})")
    if code in _UNAVAILABLE_CODES:
        return DeviceUnavailableError(f"{what}: {_INIT_HINTS.get(code or -1, str(error))}")
    return DeviceError(f"{what} failed: NVML error {code} ({error})")


def _call(what: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except pynvml.NVMLError as e:
        raise translate_error(e, what) from e


def _optional(what: str, fn: Callable[..., T], *args: Any) -> T | None:
    try:
        return _call(what, fn, *args)
    except DeviceNotSupportedError:
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- lifecycle


def init_nvml() -> None:
    """``nvmlInit`` with an actionable message when there is no usable driver."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        code = _code(e)
        hint = _INIT_HINTS.get(code if code is not None else -1, f"NVML error {code}")
        raise DeviceUnavailableError(f"NVML could not be initialised ({e}): {hint}") from e


def _shutdown_quietly() -> None:
    try:
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as e:
        logger.warning("nvmlShutdown failed: %s", e)


def _enumerate() -> list[tuple[NvmlGpuId, Any]]:
    count = _call("counting GPUs", pynvml.nvmlDeviceGetCount)
    out: list[tuple[NvmlGpuId, Any]] = []
    for index in range(int(count)):
        handle = _call(f"opening GPU {index}", pynvml.nvmlDeviceGetHandleByIndex, index)
        uuid = _text(_call(f"reading the UUID of GPU {index}", pynvml.nvmlDeviceGetUUID, handle))
        out.append((NvmlGpuId(index, uuid), handle))
    return out


def open_nvml(gpu_ids: Sequence[int], env: Mapping[str, str]) -> tuple[NvmlDevices, list[str]]:
    """The run's GPUs (CUDA ordinals, see ``visible.select_gpus``) and warnings about them."""
    init_nvml()
    try:
        gpus = _enumerate()
        view, warnings = cuda_view([gpu for gpu, _ in gpus], env)
        handles = {gpu.index: handle for gpu, handle in gpus}
        chosen = select_gpus(view, gpu_ids)
        devices = NvmlDevices([(gpu.index, handles[gpu.index]) for gpu in chosen])
    except BaseException:
        _shutdown_quietly()
        raise
    return devices, warnings + devices.open_warnings(env)


def open_all_nvml() -> NvmlDevices:
    """Every GPU NVML sees, in NVML index order — for ``lem doctor``'s inventory of the host."""
    init_nvml()
    try:
        return NvmlDevices([(gpu.index, handle) for gpu, handle in _enumerate()])
    except BaseException:
        _shutdown_quietly()
        raise


def open_nvml_by_uuid(uuids: Sequence[str]) -> NvmlDevices:
    """GPUs by UUID — for the host, which reads temperatures and power between runs."""
    init_nvml()
    try:
        targets = []
        for uuid in uuids:
            handle = _call(f"opening GPU {uuid}", pynvml.nvmlDeviceGetHandleByUUID, uuid)
            targets.append(
                (int(_call(f"reading the index of {uuid}", pynvml.nvmlDeviceGetIndex, handle)), handle)
            )
        return NvmlDevices(targets)
    except BaseException:
        _shutdown_quietly()
        raise


# --------------------------------------------------------------------------- per GPU reads


@dataclass
class _Gpu:
    index: int
    uuid: str
    handle: Any
    power_source: str = POWER_AVERAGE
    absent: set[str] = field(default_factory=set)
    last_counter_j: float | None = None
    instant_failures: int = 0  # instant reads that failed (after the retry) and fell back
    power_failures: int = 0  # samples whose power could not be read at all


def _instant_power_mw(handle: Any) -> float:
    field_id = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", None)
    if field_id is None:
        raise DeviceNotSupportedError("this nvidia-ml-py has no instant power field")
    scope = getattr(pynvml, "NVML_POWER_SCOPE_GPU", 0)
    value = _call(
        "reading the instant power field", pynvml.nvmlDeviceGetFieldValues, handle, [(field_id, scope)]
    )[0]
    if value.nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED:
        raise DeviceNotSupportedError("instant power field: not supported")
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise DeviceError(f"instant power field: NVML return code {value.nvmlReturn}")
    return float(value.value.uiVal)


def _average_power_mw(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetPowerUsage(handle))


def _clocks_event_reasons(handle: Any) -> int:
    getter = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is not None:
        try:
            return int(getter(handle))
        except pynvml.NVMLError as e:
            if _code(e) != pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                raise
    return int(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


def _temperature_c(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))


def _sm_clock_mhz(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))


def _memory_used_bytes(handle: Any) -> int:
    return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)


def _utilization_pct(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)


def _probe_power_source(handle: Any) -> str:
    try:
        _instant_power_mw(handle)
    except DeviceNotSupportedError:
        return POWER_AVERAGE
    except DeviceError as e:  # a transient failure at open: the field exists, sampling retries it
        logger.warning("instant power probe failed (%s); the field is still used", e)
    return POWER_INSTANT


# --------------------------------------------------------------------------- the devices


class NvmlDevices(GpuDevices):
    """GPUs read through NVML. Owns one ``nvmlInit`` reference, released by ``close``."""

    kind = "nvml"
    watch_counter_on_tick = True

    def __init__(self, targets: Sequence[tuple[int, Any]]) -> None:
        self._closed = False
        self._gpus: list[_Gpu] = []
        for index, handle in targets:
            uuid = _text(_call(f"reading the UUID of GPU {index}", pynvml.nvmlDeviceGetUUID, handle))
            self._gpus.append(_Gpu(index, uuid, handle, _probe_power_source(handle)))
        self._info: list[GpuInfo] | None = None
        self._counter_support: bool | None = None
        self._counter_lock = threading.Lock()
        self._resets = 0

    # ---- capability and facts

    def supports_energy_counter(self) -> bool:
        if self._counter_support is None:
            self._counter_support = all(self._has_counter(gpu) for gpu in self._gpus)
        return self._counter_support

    def _has_counter(self, gpu: _Gpu) -> bool:
        arch = _optional(
            f"reading the architecture of {gpu.uuid}", pynvml.nvmlDeviceGetArchitecture, gpu.handle
        )
        if arch is not None and arch < pynvml.NVML_DEVICE_ARCH_VOLTA:
            return False
        counter = _optional(
            f"reading the energy counter of {gpu.uuid}",
            pynvml.nvmlDeviceGetTotalEnergyConsumption,
            gpu.handle,
        )
        return counter is not None

    def info(self) -> list[GpuInfo]:
        if self._info is None:
            driver, cuda, counter = self.driver_version(), self.cuda_version(), self.supports_energy_counter()
            self._info = [self._gpu_info(gpu, driver, cuda, counter) for gpu in self._gpus]
        return list(self._info)

    def _gpu_info(self, gpu: _Gpu, driver: str | None, cuda: str | None, counter: bool) -> GpuInfo:
        h, u = gpu.handle, gpu.uuid
        memory = _optional(f"reading the memory of {u}", pynvml.nvmlDeviceGetMemoryInfo, h)
        limit_mw = _optional(f"reading the power limit of {u}", pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
        persistence = _optional(f"reading persistence mode of {u}", pynvml.nvmlDeviceGetPersistenceMode, h)
        capability = _optional(
            f"reading the compute capability of {u}", pynvml.nvmlDeviceGetCudaComputeCapability, h
        )
        return GpuInfo(
            index=gpu.index,
            uuid=u,
            name=_text(_call(f"reading the name of {u}", pynvml.nvmlDeviceGetName, h)),
            driver_version=driver,
            cuda_driver_version=cuda,
            power_limit_w=None if limit_mw is None else float(limit_mw) / 1000.0,
            sm_clock_mhz=_optional_float(f"reading the SM clock of {u}", _sm_clock_mhz, h),
            max_sm_clock_mhz=_optional_float(
                f"reading the max SM clock of {u}", pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_SM
            ),
            memory_clock_mhz=_optional_float(
                f"reading the memory clock of {u}", pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM
            ),
            memory_total_bytes=None if memory is None else int(memory.total),
            persistence_mode=None if persistence is None else persistence == pynvml.NVML_FEATURE_ENABLED,
            compute_capability=None if capability is None else f"{capability[0]}.{capability[1]}",
            supports_energy_counter=counter,
        )

    def compute_process_counts(self) -> dict[str, int]:
        """GPU UUID → processes holding a compute context on it now (GPUs that cannot say are left out)."""
        counts: dict[str, int] = {}
        for gpu in self._gpus:
            procs = _optional(
                f"listing the processes on {gpu.uuid}",
                pynvml.nvmlDeviceGetComputeRunningProcesses,
                gpu.handle,
            )
            if procs is not None:
                counts[gpu.uuid] = len(procs)
        return counts

    def driver_version(self) -> str | None:
        version = _optional("reading the driver version", pynvml.nvmlSystemGetDriverVersion)
        return None if version is None else _text(version)

    def cuda_version(self) -> str | None:
        version = _optional("reading the CUDA driver version", pynvml.nvmlSystemGetCudaDriverVersion)
        return None if version is None else f"{int(version) // 1000}.{int(version) % 1000 // 10}"

    def power_sources(self) -> dict[str, str]:
        return {gpu.uuid: gpu.power_source for gpu in self._gpus}

    def open_warnings(self, env: Mapping[str, str]) -> list[str]:
        """What a reader of the result should know about these GPUs' sensors."""
        out = [
            f"{gpu.uuid}: the instant power field is not available; the timeline samples "
            "nvmlDeviceGetPowerUsage, a ~1 s moving average on recent GPUs"
            for gpu in self._gpus
            if gpu.power_source == POWER_AVERAGE
        ]
        if not self.supports_energy_counter():
            out.append(
                "a GPU has no total-energy counter (older than Volta): energy comes from the power integral"
            )
        names = {gpu.name for gpu in self.info()}
        if len(names) > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
            out.append(
                f"mixed GPU models ({', '.join(sorted(names))}) without CUDA_DEVICE_ORDER=PCI_BUS_ID: "
                "CUDA may number them differently from NVML; set CUDA_DEVICE_ORDER=PCI_BUS_ID"
            )
        return out

    # ---- readings

    def counter_resets(self) -> int:
        return self._resets

    def energy_counter_j(self) -> dict[str, float]:
        with self._counter_lock:
            return self._read_counters()

    def _read_counters(self) -> dict[str, float]:
        readings: dict[str, float] = {}
        reset: CounterResetError | None = None
        for gpu in self._gpus:
            mj = _call(
                f"reading the energy counter of {gpu.uuid}",
                pynvml.nvmlDeviceGetTotalEnergyConsumption,
                gpu.handle,
            )
            joules = float(mj) / 1000.0
            if gpu.last_counter_j is not None and joules < gpu.last_counter_j and reset is None:
                reset = CounterResetError(gpu.uuid, gpu.last_counter_j, joules)
            gpu.last_counter_j = joules
            readings[gpu.uuid] = joules
        if reset is not None:
            self._resets += 1
            reset.readings = readings
            raise reset
        return readings

    def sample(self) -> list[DeviceSample]:
        return [self._sample_one(gpu) for gpu in self._gpus]

    def gpus(self) -> list[_Gpu]:
        return list(self._gpus)

    def compute_processes(self) -> dict[str, list[int]]:
        """``nvmlDeviceGetComputeRunningProcesses`` per GPU; a GPU that cannot list them is left out."""
        out: dict[str, list[int]] = {}
        for gpu in self._gpus:
            procs = self._read(gpu, "compute_processes", pynvml.nvmlDeviceGetComputeRunningProcesses)
            if procs is not None:
                out[gpu.uuid] = [int(p.pid) for p in procs]
        return out

    def power_read_failures(self) -> dict[str, int]:
        return {gpu.uuid: gpu.instant_failures + gpu.power_failures for gpu in self._gpus}

    def _power_mw(self, gpu: _Gpu) -> float | None:
        """Instant power (one retry), else the averaged field for this sample, else None; counted."""
        if gpu.power_source == POWER_INSTANT:
            for _ in range(2):
                try:
                    return _call(f"reading instant power of {gpu.uuid}", _instant_power_mw, gpu.handle)
                except DeviceNotSupportedError:
                    gpu.power_source = POWER_AVERAGE  # the driver says it never will: stop asking
                    break
                except DeviceUnavailableError:
                    raise  # the GPU or driver is gone: not a failed reading
                except DeviceError as e:
                    logger.debug("instant power of %s: %s", gpu.uuid, e)
            gpu.instant_failures += 1
        try:
            return self._read(gpu, "power", _average_power_mw)
        except DeviceUnavailableError:
            raise
        except DeviceError as e:
            gpu.power_failures += 1
            logger.debug("average power of %s: %s", gpu.uuid, e)
            return None

    def _sample_one(self, gpu: _Gpu) -> DeviceSample:
        power_mw = self._power_mw(gpu)
        temperature = self._read(gpu, "temperature", _temperature_c)
        sm_clock = self._read(gpu, "sm_clock", _sm_clock_mhz)
        memory = self._read(gpu, "memory_used", _memory_used_bytes)
        utilization = self._read(gpu, "utilization", _utilization_pct)
        reasons = self._read(gpu, "clocks_event_reasons", _clocks_event_reasons)
        return DeviceSample(
            gpu_index=gpu.index,
            gpu_uuid=gpu.uuid,
            power_w=None if power_mw is None else power_mw / 1000.0,
            temperature_c=temperature,
            sm_clock_mhz=sm_clock,
            memory_used_bytes=memory,
            utilization_pct=utilization,
            throttle_reasons=reasons,
        )

    def _read(self, gpu: _Gpu, name: str, fn: Callable[[Any], T]) -> T | None:
        """One telemetry field; ``None`` (and never asked again) when the GPU does not offer it."""
        if name in gpu.absent:
            return None
        try:
            return _call(f"reading {name} of {gpu.uuid}", fn, gpu.handle)
        except DeviceNotSupportedError:
            gpu.absent.add(name)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _shutdown_quietly()


def _optional_float(what: str, fn: Callable[..., Any], *args: Any) -> float | None:
    value = _optional(what, fn, *args)
    return None if value is None else float(value)


# --------------------------------------------------------------------------- capability probe (gpu-check)


@dataclass(frozen=True)
class Capability:
    """Whether one NVML reading works on a GPU, how long a call takes, and what it said."""

    name: str
    supported: bool
    latency_ms: float | None  # median over the repeats, supported readings only
    value: str | None
    error: str | None = None


def _average_power_field_mw(handle: Any) -> float:
    field_id = getattr(pynvml, "NVML_FI_DEV_POWER_AVERAGE", None)
    if field_id is None:
        raise DeviceNotSupportedError("this nvidia-ml-py has no average power field")
    scope = getattr(pynvml, "NVML_POWER_SCOPE_GPU", 0)
    value = pynvml.nvmlDeviceGetFieldValues(handle, [(field_id, scope)])[0]
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(value.nvmlReturn)
    return float(value.value.uiVal)


CAPABILITY_READS: dict[str, Callable[[Any], object]] = {
    "total_energy_counter_mj": lambda h: pynvml.nvmlDeviceGetTotalEnergyConsumption(h),  # noqa: PLW0108
    "instant_power_field_mw": _instant_power_mw,
    "average_power_field_mw": _average_power_field_mw,
    "power_usage_mw": _average_power_mw,
    "clocks_event_reasons": _clocks_event_reasons,
    "temperature_c": _temperature_c,
    "sm_clock_mhz": _sm_clock_mhz,
    "compute_processes": lambda h: len(pynvml.nvmlDeviceGetComputeRunningProcesses(h)),
}


def probe_capabilities(
    devices: NvmlDevices, repeats: int = 20, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[Capability]]:
    """UUID -> one ``Capability`` per entry of ``CAPABILITY_READS`` (each called ``repeats`` times)."""
    return {
        gpu.uuid: [_probe(name, read, gpu.handle, repeats, clock) for name, read in CAPABILITY_READS.items()]
        for gpu in devices.gpus()
    }


def _probe(
    name: str, read: Callable[[Any], object], handle: Any, repeats: int, clock: Callable[[], float]
) -> Capability:
    times: list[float] = []
    value: object = None
    try:
        for _ in range(repeats):
            start = clock()
            value = _call(f"reading {name}", read, handle)
            times.append(clock() - start)
    except DeviceError as e:
        return Capability(name, False, None, None, str(e))
    times.sort()
    return Capability(name, True, 1000.0 * times[len(times) // 2], str(value))

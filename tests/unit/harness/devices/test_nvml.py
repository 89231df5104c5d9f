"""NVML boundary, with pynvml patched at its one import site (autospec): no GPU needed."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from lem_harness.devices import nvml as nvml_module
from lem_harness.devices import open_devices
from lem_harness.devices.base import (
    CounterResetError,
    DeviceError,
    DeviceNotSupportedError,
    DeviceUnavailableError,
)
from lem_harness.devices.nvml import (
    POWER_AVERAGE,
    POWER_INSTANT,
    Capability,
    NvmlDevices,
    open_nvml,
    open_nvml_by_uuid,
    probe_capabilities,
    translate_error,
)
from lem_harness.experiment import MeasurementConfig

# The real bindings, taken before any patching: the tests do not import pynvml themselves.
real: Any = vars(nvml_module)["pynvml"]

UUIDS = ("GPU-aaaa1111", "GPU-bbbb2222", "GPU-cccc3333", "GPU-dddd4444")


def nvml_error(code: int) -> real.NVMLError:
    return real.NVMLError(code)


NOT_SUPPORTED = real.NVML_ERROR_NOT_SUPPORTED


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    arch: int = real.NVML_DEVICE_ARCH_HOPPER
    energy_mj: list[int] = field(default_factory=lambda: list(range(1_000_000, 50_000_000, 1_000_000)))
    instant_mw: int | None = 250_000  # None: the instant field answers NotSupported
    average_mw: int = 240_000
    unsupported: set[str] = field(default_factory=set)  # function names answering NotSupported
    instant_codes: list[int] = field(default_factory=list)  # field return codes answered before success
    average_errors: list[int] = field(default_factory=list)  # NVML errors raised by PowerUsage before success


class FakeNvml:
    """Wires an autospecced pynvml mock to a list of fake GPUs (handles are "h<index>")."""

    def __init__(self, fake: Any, gpus: list[FakeGpu]) -> None:
        self.fake = fake
        self.gpus = gpus
        fake.nvmlDeviceGetCount.side_effect = lambda: len(self.gpus)
        fake.nvmlDeviceGetHandleByIndex.side_effect = self._handle_by_index
        fake.nvmlDeviceGetHandleByUUID.side_effect = self._handle_by_uuid
        fake.nvmlDeviceGetIndex.side_effect = lambda h: int(h[1:])
        fake.nvmlSystemGetDriverVersion.return_value = "550.54.15"
        fake.nvmlSystemGetCudaDriverVersion.return_value = 12040
        self._per_gpu("nvmlDeviceGetUUID", lambda g: g.uuid)
        self._per_gpu("nvmlDeviceGetName", lambda g: g.name)
        self._per_gpu("nvmlDeviceGetArchitecture", lambda g: g.arch)
        self._per_gpu("nvmlDeviceGetTotalEnergyConsumption", lambda g: g.energy_mj.pop(0))
        self._per_gpu("nvmlDeviceGetFieldValues", self._field_values)
        self._per_gpu("nvmlDeviceGetPowerUsage", self._average_power)
        self._per_gpu("nvmlDeviceGetTemperature", lambda g, sensor: 41)
        self._per_gpu("nvmlDeviceGetClockInfo", lambda g, kind: 1980 if kind == real.NVML_CLOCK_SM else 2619)
        self._per_gpu("nvmlDeviceGetMaxClockInfo", lambda g, kind: 1980)
        self._per_gpu("nvmlDeviceGetMemoryInfo", lambda g: SimpleNamespace(used=3 * 2**30, total=80 * 2**30))
        self._per_gpu("nvmlDeviceGetUtilizationRates", lambda g: SimpleNamespace(gpu=87, memory=40))
        self._per_gpu("nvmlDeviceGetCurrentClocksEventReasons", lambda g: 0x4)
        self._per_gpu("nvmlDeviceGetCurrentClocksThrottleReasons", lambda g: 0x40)
        self._per_gpu("nvmlDeviceGetEnforcedPowerLimit", lambda g: 700_000)
        self._per_gpu("nvmlDeviceGetPersistenceMode", lambda g: real.NVML_FEATURE_ENABLED)
        self._per_gpu("nvmlDeviceGetCudaComputeCapability", lambda g: (9, 0))

    def _gpu(self, handle: str) -> FakeGpu:
        return self.gpus[int(handle[1:])]

    def _handle_by_index(self, index: int) -> str:
        if not 0 <= index < len(self.gpus):
            raise nvml_error(real.NVML_ERROR_INVALID_ARGUMENT)
        return f"h{index}"

    def _handle_by_uuid(self, uuid: str) -> str:
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return f"h{index}"
        raise nvml_error(real.NVML_ERROR_NOT_FOUND)

    def _per_gpu(self, name: str, answer: Any) -> None:
        def side_effect(handle: str, *args: Any) -> Any:
            gpu = self._gpu(handle)
            if name in gpu.unsupported:
                raise nvml_error(NOT_SUPPORTED)
            return answer(gpu, *args)

        getattr(self.fake, name).side_effect = side_effect

    @staticmethod
    def _average_power(gpu: FakeGpu) -> int:
        if gpu.average_errors:
            raise nvml_error(gpu.average_errors.pop(0))
        return gpu.average_mw

    @staticmethod
    def _field_values(gpu: FakeGpu, fields: list[tuple[int, int]]) -> list[Any]:
        value = real.c_nvmlFieldValue_t()
        value.fieldId = fields[0][0]
        if fields != [(real.NVML_FI_DEV_POWER_INSTANT, real.NVML_POWER_SCOPE_GPU)]:
            value.nvmlReturn = NOT_SUPPORTED  # only the instant power field
        elif gpu.instant_codes:
            value.nvmlReturn = gpu.instant_codes.pop(0)  # the real call returns per-field codes
        elif gpu.instant_mw is None:
            value.nvmlReturn = NOT_SUPPORTED
        else:
            value.nvmlReturn = real.NVML_SUCCESS
            value.value.uiVal = ctypes.c_uint(gpu.instant_mw).value
        return [value]


@pytest.fixture
def fake_pynvml() -> Iterator[Any]:
    """pynvml patched where it is imported, keeping the real constants and exception classes."""
    with mock.patch("lem_harness.devices.nvml.pynvml", autospec=True) as fake:
        for name in dir(real):
            value = getattr(real, name)
            is_error = isinstance(value, type) and issubclass(value, Exception)
            if name.startswith(("NVML_", "c_nvml")) or is_error:
                setattr(fake, name, value)
        yield fake


def world(fake: Any, *gpus: FakeGpu) -> FakeNvml:
    return FakeNvml(fake, list(gpus) or [FakeGpu(UUIDS[0])])


# --------------------------------------------------------------------------- init


def test_library_not_found_becomes_device_unavailable_with_a_hint(fake_pynvml: Any) -> None:
    fake_pynvml.nvmlInit.side_effect = nvml_error(real.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(DeviceUnavailableError) as caught:
        open_nvml([0], {})
    message = str(caught.value)
    assert "libnvidia-ml.so.1" in message
    assert "measurement.device: simulated" in message
    assert isinstance(caught.value.__cause__, real.NVMLError_LibraryNotFound)


def test_auto_without_nvml_gives_no_devices_and_a_warning(fake_pynvml: Any) -> None:
    fake_pynvml.nvmlInit.side_effect = nvml_error(real.NVML_ERROR_DRIVER_NOT_LOADED)
    devices, warnings = open_devices(MeasurementConfig(device="auto"), [0], env={})
    assert devices is None
    assert len(warnings) == 1
    assert warnings[0].startswith("no GPU energy sensor")
    assert "kernel driver is not loaded" in warnings[0]


def test_explicit_nvml_without_nvml_raises(fake_pynvml: Any) -> None:
    fake_pynvml.nvmlInit.side_effect = nvml_error(real.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(DeviceUnavailableError):
        open_devices(MeasurementConfig(device="nvml"), [0], env={})


def test_simulated_env_never_touches_nvml(fake_pynvml: Any) -> None:
    devices, warnings = open_devices(MeasurementConfig(), [0, 1], env={"LEM_SIMULATED_DEVICE": "1"})
    assert devices is not None
    assert devices.kind == "simulated"
    assert devices.uuids() == ["GPU-SIMULATED-0", "GPU-SIMULATED-1"]
    assert "simulated" in warnings[0]
    fake_pynvml.nvmlInit.assert_not_called()


def test_failure_after_init_shuts_nvml_down(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    with pytest.raises(DeviceError, match="renumbered"):
        open_nvml([0, 5, 6], {})
    fake_pynvml.nvmlShutdown.assert_called_once_with()


def test_close_is_idempotent(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    devices, _ = open_nvml([0], {})
    devices.close()
    devices.close()
    fake_pynvml.nvmlShutdown.assert_called_once_with()


# --------------------------------------------------------------------------- facts


def test_gpu_info_records_identity_limits_and_clocks(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    devices, warnings = open_nvml([0], {})
    (info,) = devices.info()
    assert warnings == []
    assert info.index == 0
    assert info.uuid == UUIDS[0]
    assert info.name == "NVIDIA H100 80GB HBM3"
    assert info.driver_version == "550.54.15"
    assert info.cuda_driver_version == "12.4"
    assert info.power_limit_w == 700.0
    assert info.sm_clock_mhz == 1980.0
    assert info.max_sm_clock_mhz == 1980.0
    assert info.memory_clock_mhz == 2619.0
    assert info.memory_total_bytes == 80 * 2**30
    assert info.persistence_mode is True
    assert info.compute_capability == "9.0"
    assert info.supports_energy_counter is True
    assert devices.driver_version() == "550.54.15"
    assert devices.cuda_version() == "12.4"


def test_unsupported_facts_are_none(fake_pynvml: Any) -> None:
    gpu = FakeGpu(UUIDS[0], unsupported={"nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPersistenceMode"})
    world(fake_pynvml, gpu)
    devices, _ = open_nvml([0], {})
    (info,) = devices.info()
    assert info.power_limit_w is None
    assert info.persistence_mode is None
    assert info.compute_capability == "9.0"


# --------------------------------------------------------------------------- energy counter


def test_pre_volta_gpu_has_no_energy_counter(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], arch=real.NVML_DEVICE_ARCH_PASCAL))
    devices, warnings = open_nvml([0], {})
    assert devices.supports_energy_counter() is False
    assert devices.info()[0].supports_energy_counter is False
    assert any("no total-energy counter" in w for w in warnings)
    fake_pynvml.nvmlDeviceGetTotalEnergyConsumption.assert_not_called()


def test_counter_answering_not_supported_means_no_counter(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], unsupported={"nvmlDeviceGetTotalEnergyConsumption"}))
    devices, _ = open_nvml([0], {})
    assert devices.supports_energy_counter() is False
    with pytest.raises(DeviceNotSupportedError) as caught:
        devices.energy_counter_j()
    assert isinstance(caught.value.__cause__, real.NVMLError_NotSupported)


def test_energy_counter_is_converted_from_millijoules(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], energy_mj=[1_000_000, 5_000_000, 6_500_250]))
    devices, _ = open_nvml([0], {})
    assert devices.supports_energy_counter() is True  # consumed the probe reading
    assert devices.energy_counter_j() == {UUIDS[0]: 5000.0}
    assert devices.energy_counter_j() == {UUIDS[0]: 6500.25}


def test_counter_reset_raises_with_the_readings_and_recovers(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], energy_mj=[0, 6_500_000, 1_000, 3_000]))
    devices, _ = open_nvml([0], {})  # the capability probe reads the first value
    assert devices.energy_counter_j() == {UUIDS[0]: 6500.0}
    with pytest.raises(CounterResetError) as caught:
        devices.energy_counter_j()
    assert caught.value.gpu_uuid == UUIDS[0]
    assert caught.value.previous_j == 6500.0
    assert caught.value.current_j == 1.0
    assert caught.value.readings == {UUIDS[0]: 1.0}
    assert devices.energy_counter_j() == {UUIDS[0]: 3.0}  # the next delta is measured from the reset


# --------------------------------------------------------------------------- samples


def test_sample_reads_instant_power_and_every_field(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    devices, _ = open_nvml([0], {})
    (sample,) = devices.sample()
    assert devices.power_sources() == {UUIDS[0]: POWER_INSTANT}
    assert sample.gpu_index == 0
    assert sample.gpu_uuid == UUIDS[0]
    assert sample.power_w == 250.0
    assert sample.temperature_c == 41.0
    assert sample.sm_clock_mhz == 1980.0
    assert sample.memory_used_bytes == 3 * 2**30
    assert sample.utilization_pct == 87.0
    assert sample.throttle_reasons == 0x4
    fake_pynvml.nvmlDeviceGetPowerUsage.assert_not_called()


def test_instant_field_not_supported_falls_back_to_power_usage(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], instant_mw=None, average_mw=123_456))
    devices, warnings = open_nvml([0], {})
    assert devices.power_sources() == {UUIDS[0]: POWER_AVERAGE}
    assert devices.sample()[0].power_w == 123.456
    assert any("nvmlDeviceGetPowerUsage" in w and "1 s" in w for w in warnings)


def test_field_values_function_missing_falls_back_to_power_usage(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], average_mw=99_000))
    fake_pynvml.nvmlDeviceGetFieldValues.side_effect = nvml_error(real.NVML_ERROR_FUNCTION_NOT_FOUND)
    devices, _ = open_nvml([0], {})
    assert devices.power_sources() == {UUIDS[0]: POWER_AVERAGE}
    assert devices.sample()[0].power_w == 99.0


def test_one_failed_instant_read_is_retried_and_never_disables_power(fake_pynvml: Any) -> None:
    gpu = FakeGpu(UUIDS[0], instant_mw=250_000, average_mw=240_000)
    world(fake_pynvml, gpu)
    devices, _ = open_nvml([0], {})
    gpu.instant_codes = [real.NVML_ERROR_UNKNOWN]  # one transient failure: the retry succeeds
    powers = [devices.sample()[0].power_w for _ in range(3)]
    assert powers == [250.0, 250.0, 250.0]
    assert devices.power_sources() == {UUIDS[0]: POWER_INSTANT}
    assert devices.power_read_failures() == {UUIDS[0]: 0}
    fake_pynvml.nvmlDeviceGetPowerUsage.assert_not_called()


def test_failing_instant_field_falls_back_to_the_average_per_sample_and_counts(fake_pynvml: Any) -> None:
    gpu = FakeGpu(UUIDS[0], instant_mw=250_000, average_mw=240_000)
    world(fake_pynvml, gpu)
    devices, _ = open_nvml([0], {})
    gpu.instant_codes = [real.NVML_ERROR_TIMEOUT] * 4  # two samples fail twice each
    powers = [devices.sample()[0].power_w for _ in range(3)]
    assert powers == [240.0, 240.0, 250.0]  # averaged field twice, then instant again
    assert devices.power_read_failures() == {UUIDS[0]: 2}


def test_power_unreadable_in_both_fields_is_none_for_that_sample_only(fake_pynvml: Any) -> None:
    gpu = FakeGpu(UUIDS[0], instant_mw=250_000, average_mw=240_000)
    world(fake_pynvml, gpu)
    devices, _ = open_nvml([0], {})
    gpu.instant_codes = [real.NVML_ERROR_UNKNOWN] * 2
    gpu.average_errors = [real.NVML_ERROR_UNKNOWN]
    powers = [devices.sample()[0].power_w for _ in range(2)]
    assert powers == [None, 250.0]
    assert devices.power_read_failures() == {UUIDS[0]: 2}  # the instant fallback and the missing sample


def test_not_supported_fields_are_none_and_not_asked_again(fake_pynvml: Any) -> None:
    absent = {
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetClockInfo",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetCurrentClocksEventReasons",
    }
    world(fake_pynvml, FakeGpu(UUIDS[0], unsupported=absent))
    devices, _ = open_nvml([0], {})
    first, second = devices.sample()[0], devices.sample()[0]
    for sample in (first, second):
        assert sample.power_w == 250.0
        assert sample.temperature_c is None
        assert sample.sm_clock_mhz is None
        assert sample.memory_used_bytes is None
        assert sample.utilization_pct is None
        assert sample.throttle_reasons is None
    assert fake_pynvml.nvmlDeviceGetTemperature.call_count == 1
    assert fake_pynvml.nvmlDeviceGetUtilizationRates.call_count == 1


def test_old_driver_falls_back_to_the_throttle_reasons_name(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    fake_pynvml.nvmlDeviceGetCurrentClocksEventReasons.side_effect = nvml_error(
        real.NVML_ERROR_FUNCTION_NOT_FOUND
    )
    devices, _ = open_nvml([0], {})
    assert devices.sample()[0].throttle_reasons == 0x40


def test_lost_gpu_during_sampling_raises_not_none(fake_pynvml: Any) -> None:
    world(fake_pynvml)
    devices, _ = open_nvml([0], {})
    fake_pynvml.nvmlDeviceGetTemperature.side_effect = nvml_error(real.NVML_ERROR_GPU_IS_LOST)
    with pytest.raises(DeviceUnavailableError, match="temperature"):
        devices.sample()


def test_translate_error_maps_codes() -> None:
    assert type(translate_error(nvml_error(NOT_SUPPORTED), "x")) is DeviceNotSupportedError
    assert type(translate_error(nvml_error(real.NVML_ERROR_GPU_IS_LOST), "x")) is DeviceUnavailableError
    timeout = translate_error(nvml_error(real.NVML_ERROR_TIMEOUT), "reading power")
    assert type(timeout) is DeviceError
    assert str(timeout).startswith(f"reading power failed: NVML error {real.NVML_ERROR_TIMEOUT}")


# --------------------------------------------------------------------------- visible devices


def four_gpus(fake: Any) -> FakeNvml:
    return world(fake, *(FakeGpu(uuid) for uuid in UUIDS))


@pytest.mark.parametrize(
    ("env", "gpu_ids", "expected"),
    [
        ({}, [0], [UUIDS[0]]),
        ({}, [2, 3], [UUIDS[2], UUIDS[3]]),
        ({}, [0, 1, 2, 3], list(UUIDS)),
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, [2, 3], [UUIDS[2], UUIDS[3]]),  # narrowed to the run's GPUs
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, [1], [UUIDS[3]]),  # CUDA ordinal 1 is NVML index 3
        ({"CUDA_VISIBLE_DEVICES": "3,0,1"}, [0, 1], [UUIDS[3], UUIDS[0]]),
        ({"CUDA_VISIBLE_DEVICES": f"{UUIDS[2]},{UUIDS[0]}"}, [0, 1], [UUIDS[2], UUIDS[0]]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-dddd"}, [0], [UUIDS[3]]),  # unique UUID prefix
        ({"NVIDIA_VISIBLE_DEVICES": f"{UUIDS[1]}"}, [0], [UUIDS[1]]),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, [1], [UUIDS[1]]),
        ({"CUDA_VISIBLE_DEVICES": "1", "NVIDIA_VISIBLE_DEVICES": UUIDS[3]}, [0], [UUIDS[1]]),  # CUDA wins
    ],
)
def test_visible_devices_map_to_nvml_devices(
    fake_pynvml: Any, env: dict[str, str], gpu_ids: list[int], expected: list[str]
) -> None:
    four_gpus(fake_pynvml)
    devices, warnings = open_nvml(gpu_ids, env)
    assert devices.uuids() == expected
    assert warnings == []


def test_container_host_indices_are_not_nvml_indices(fake_pynvml: Any) -> None:
    # Inside a container given host GPU 3 only, NVML sees one GPU, numbered 0.
    world(fake_pynvml, FakeGpu(UUIDS[3]))
    devices, warnings = open_nvml([3], {"NVIDIA_VISIBLE_DEVICES": "3"})
    assert devices.uuids() == [UUIDS[3]]
    assert [gpu.index for gpu in devices.info()] == [0]
    assert warnings == []


def test_invalid_cuda_entry_truncates_the_list_like_cuda(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    devices, warnings = open_nvml([0], {"CUDA_VISIBLE_DEVICES": "1,7,2"})
    assert devices.uuids() == [UUIDS[1]]
    assert len(warnings) == 1
    assert "index 7" in warnings[0]


def test_host_indices_outside_a_container_are_ignored_with_a_warning(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    devices, warnings = open_nvml([2], {"NVIDIA_VISIBLE_DEVICES": "2,3"})
    assert devices.uuids() == [UUIDS[2]]
    assert "container runtime only" in warnings[0]


def test_empty_cuda_visible_devices_means_no_sensor(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    devices, warnings = open_devices(MeasurementConfig(), [0], env={"CUDA_VISIBLE_DEVICES": ""})
    assert devices is None
    assert "no GPU is visible" in warnings[0]
    fake_pynvml.nvmlShutdown.assert_called_once_with()


def test_mig_instance_is_refused(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    with pytest.raises(DeviceError, match="MIG"):
        open_nvml([0], {"CUDA_VISIBLE_DEVICES": "MIG-1234"})


def test_mixed_models_without_pci_order_warn(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0]), FakeGpu(UUIDS[1], name="NVIDIA A100-SXM4-40GB"))
    _, warnings = open_nvml([0, 1], {})
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in w for w in warnings)
    _, warnings = open_nvml([0, 1], {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert warnings == []


# --------------------------------------------------------------------------- host helper


def test_open_by_uuid_for_the_host(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    devices = open_nvml_by_uuid([UUIDS[2], UUIDS[0]])
    assert isinstance(devices, NvmlDevices)
    assert devices.uuids() == [UUIDS[2], UUIDS[0]]
    assert [s.temperature_c for s in devices.sample()] == [41.0, 41.0]
    devices.close()
    fake_pynvml.nvmlShutdown.assert_called_once_with()


def test_open_by_unknown_uuid_raises_and_shuts_down(fake_pynvml: Any) -> None:
    four_gpus(fake_pynvml)
    with pytest.raises(DeviceError, match="opening GPU GPU-nope"):
        open_nvml_by_uuid(["GPU-nope"])
    fake_pynvml.nvmlShutdown.assert_called_once_with()


def test_compute_processes_list_pids_and_skip_gpus_that_cannot_say(fake_pynvml: Any) -> None:
    world(
        fake_pynvml,
        FakeGpu(UUIDS[0]),
        FakeGpu(UUIDS[1], unsupported={"nvmlDeviceGetComputeRunningProcesses"}),
    )
    fake_pynvml.nvmlDeviceGetComputeRunningProcesses.side_effect = lambda h: (
        [SimpleNamespace(pid=10, usedGpuMemory=1), SimpleNamespace(pid=77, usedGpuMemory=2)]
        if h == "h0"
        else (_ for _ in ()).throw(nvml_error(NOT_SUPPORTED))
    )
    devices, _ = open_nvml([0, 1], {})
    assert devices.compute_processes() == {UUIDS[0]: [10, 77]}


def test_capability_probe_reports_support_latency_and_values(fake_pynvml: Any) -> None:
    world(fake_pynvml, FakeGpu(UUIDS[0], energy_mj=[7_000] * 10, unsupported={"nvmlDeviceGetTemperature"}))
    fake_pynvml.nvmlDeviceGetComputeRunningProcesses.side_effect = lambda h: []
    devices, _ = open_nvml([0], {})
    ticks = iter(float(i) / 1000.0 for i in range(1000))  # every clock read 1 ms after the last
    table = {c.name: c for c in probe_capabilities(devices, repeats=3, clock=lambda: next(ticks))[UUIDS[0]]}
    assert table["total_energy_counter_mj"] == Capability(
        "total_energy_counter_mj", True, pytest.approx(1.0), "7000"
    )
    assert table["instant_power_field_mw"].value == "250000.0"
    assert table["average_power_field_mw"].supported is False  # the fake answers only the instant field
    assert table["temperature_c"].supported is False and "not offered" in (table["temperature_c"].error or "")
    assert table["compute_processes"].value == "0"


def test_simulated_with_a_cpu_clock_follows_the_load(fake_pynvml: Any) -> None:
    devices, warnings = open_devices(
        MeasurementConfig(device="simulated"), [0], env={}, cpu_clock=lambda: 0.0
    )
    assert type(devices).__name__ == "LoadFollowingDevices"
    assert "follow" in warnings[0]
    fake_pynvml.nvmlInit.assert_not_called()

"""CUDA narrowed to the measured GPUs (pure)."""

from __future__ import annotations

from lem_harness.devices.visible import pinned_cuda_env


def test_pinning_names_the_measured_nvml_indices_in_pci_order() -> None:
    assert pinned_cuda_env([1], {}) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}
    assert pinned_cuda_env([2, 3], {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}) == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "2,3",
    }


def test_nothing_changes_when_cuda_already_sees_exactly_the_measured_gpus() -> None:
    assert pinned_cuda_env([0], {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0"}) == {}

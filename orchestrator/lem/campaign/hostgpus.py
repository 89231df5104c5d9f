"""The host's GPUs by index (as ``nvidia-smi`` numbers them) → UUID, read once per campaign.

Containers receive GPUs by UUID and the thermal gaps read them by UUID; configs name them by
host index. NVML is reached through ``lem_harness.devices.nvml`` (the only pynvml importer).
Without NVML on the host the inventory is empty and the reason is returned for display.
"""

from __future__ import annotations

from collections.abc import Collection

from lem_harness.devices.base import DeviceError


def host_gpu_inventory(indices: Collection[int]) -> tuple[dict[int, str], str | None]:
    """``{index: uuid}`` for the host GPUs covering ``indices``, or ``({}, why not)``."""
    if not indices:
        return {}, None
    try:
        from lem_harness.devices.nvml import open_nvml

        devices, _ = open_nvml(sorted(indices), env={})
    except (DeviceError, ImportError) as e:
        return {}, str(e)
    try:
        return {gpu.index: gpu.uuid for gpu in devices.info()}, None
    except DeviceError as e:
        return {}, str(e)
    finally:
        devices.close()


def host_gpu_processes(uuids: Collection[str]) -> dict[str, int]:
    """GPU UUID → compute processes on it now; empty when NVML cannot tell (preflight only warns)."""
    if not uuids:
        return {}
    try:
        from lem_harness.devices.nvml import open_nvml_by_uuid

        devices = open_nvml_by_uuid(sorted(uuids))
    except (DeviceError, ImportError):
        return {}
    try:
        return devices.compute_process_counts()
    except DeviceError:
        return {}
    finally:
        devices.close()

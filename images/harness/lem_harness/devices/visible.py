"""Which NVML devices this process's CUDA ordinals are (pure; no NVML calls).

NVML numbers every GPU the process can see (inside a container: only the GPUs the
NVIDIA container runtime passed in, renumbered from 0 in PCI order). CUDA numbers the
GPUs left after ``CUDA_VISIBLE_DEVICES``. The engine addresses GPUs by CUDA ordinal,
so the energy must be read from the NVML devices behind those ordinals.

- ``CUDA_VISIBLE_DEVICES``: integers are indices into this process's enumeration
  (CUDA's rule: the list stops at the first entry that is not a visible GPU);
  ``GPU-…`` entries are UUIDs or unique UUID prefixes.
- ``NVIDIA_VISIBLE_DEVICES`` is applied by the container runtime, not by CUDA. Its
  integers are HOST indices and are never used as indices here. UUID entries narrow
  the view to those GPUs; ``all`` (or an index list naming as many GPUs as NVML sees,
  i.e. we are inside that container) keeps every GPU.
- Otherwise CUDA sees every GPU, in NVML order. (CUDA orders by speed first unless
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; that only matters with mixed GPU models, which
  ``nvml.py`` warns about.)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lem_harness.devices.base import DeviceError, DeviceUnavailableError


@dataclass(frozen=True)
class NvmlGpuId:
    """One GPU as NVML numbers it in this process."""

    index: int
    uuid: str


def parse_device_list(value: str) -> list[str]:
    """Comma-separated entries, stripped, empty entries dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def cuda_view(gpus: Sequence[NvmlGpuId], env: Mapping[str, str]) -> tuple[list[NvmlGpuId], list[str]]:
    """The GPUs in CUDA ordinal order as this process sees them, plus warnings."""
    cuda_visible = env.get("CUDA_VISIBLE_DEVICES")
    if cuda_visible is not None:
        return _apply_cuda_visible(gpus, cuda_visible)
    nvidia_visible = env.get("NVIDIA_VISIBLE_DEVICES")
    if nvidia_visible is not None:
        return _apply_nvidia_visible(gpus, nvidia_visible)
    return list(gpus), []


def select_gpus(view: Sequence[NvmlGpuId], gpu_ids: Sequence[int]) -> list[NvmlGpuId]:
    """The run's GPUs out of the CUDA view.

    When the view has exactly as many GPUs as the run asks for, the process was already
    narrowed to the run's GPUs (a container started with them, or ``CUDA_VISIBLE_DEVICES``
    set by the local runtime): every visible GPU is measured, whatever its host number.
    Otherwise ``gpu_ids`` are CUDA ordinals into the view.
    """
    if not view:
        raise DeviceUnavailableError(
            "no GPU is visible to this process (CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES hide them all)"
        )
    if len(gpu_ids) == len(view):
        return list(view)
    outside = [i for i in gpu_ids if not 0 <= i < len(view)]
    if outside:
        seen = ", ".join(f"{n}={gpu.uuid}" for n, gpu in enumerate(view))
        raise DeviceError(
            f"gpus {list(gpu_ids)} asks for GPU(s) {outside}, but this process sees {len(view)} GPU(s) "
            f"({seen}). Inside a container the GPUs are renumbered from 0: list the GPUs in the config, "
            "not host indices, or pass the run's GPUs to the container"
        )
    return [view[i] for i in gpu_ids]


def _apply_cuda_visible(gpus: Sequence[NvmlGpuId], value: str) -> tuple[list[NvmlGpuId], list[str]]:
    view: list[NvmlGpuId] = []
    for entry in parse_device_list(value):
        gpu, problem = _match_cuda_entry(gpus, entry)
        if gpu is None:
            return view, [
                f"CUDA_VISIBLE_DEVICES={value!r}: {problem}; CUDA ignores this entry and every later one"
            ]
        if gpu in view:
            return view, [f"CUDA_VISIBLE_DEVICES={value!r} lists {entry} twice; CUDA stops at the repeat"]
        view.append(gpu)
    return view, []


def _match_cuda_entry(gpus: Sequence[NvmlGpuId], entry: str) -> tuple[NvmlGpuId | None, str]:
    if entry.startswith("MIG-"):
        raise DeviceError(
            f"CUDA_VISIBLE_DEVICES names a MIG instance ({entry}): NVML's energy counter belongs to the "
            "whole GPU, so a MIG slice cannot be measured; give the run whole GPUs"
        )
    if entry.lstrip("-").isdigit():
        index = int(entry)
        if 0 <= index < len(gpus):
            return gpus[index], ""
        return None, f"index {index} is not one of the {len(gpus)} GPU(s) this process sees"
    matches = [gpu for gpu in gpus if gpu.uuid.startswith(entry)]
    if len(matches) == 1:
        return matches[0], ""
    if not matches:
        return None, f"{entry} is not a GPU this process sees"
    return None, f"{entry} matches {len(matches)} GPUs; give the full UUID"


def _apply_nvidia_visible(gpus: Sequence[NvmlGpuId], value: str) -> tuple[list[NvmlGpuId], list[str]]:
    entries = parse_device_list(value)
    if value.strip().lower() in ("all", "") or not entries:
        return list(gpus), []
    if all(entry.lstrip("-").isdigit() for entry in entries):
        if len(entries) == len(gpus):
            return list(gpus), []  # inside that container: host indices, renumbered from 0 here
        return list(gpus), [
            f"NVIDIA_VISIBLE_DEVICES={value!r} lists host indices but this process sees {len(gpus)} GPU(s): "
            "the variable is applied by the container runtime only, so CUDA sees every GPU here"
        ]
    view = [gpu for gpu in gpus if any(gpu.uuid.startswith(entry) for entry in entries)]
    missing = [entry for entry in entries if not any(gpu.uuid.startswith(entry) for gpu in gpus)]
    warnings = [f"NVIDIA_VISIBLE_DEVICES lists {entry}, which NVML does not see here" for entry in missing]
    return view, warnings


def pinned_cuda_env(nvml_indices: Sequence[int], env: Mapping[str, str]) -> dict[str, str]:
    """The variables that make CUDA ordinals 0..n-1 exactly the measured GPUs (NVML indices).

    Integer ``CUDA_VISIBLE_DEVICES`` entries index CUDA's full enumeration, which is NVML's
    (PCI bus) order once ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; integers rather than UUIDs because
    some engines parse the variable as integers. Empty when nothing needs to change.
    """
    wanted = {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in nvml_indices),
    }
    return {key: value for key, value in wanted.items() if env.get(key) != value}


def cuda_initialised() -> bool:
    """Whether this process already holds a CUDA context (then CUDA_VISIBLE_DEVICES is fixed)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        return bool(cuda is not None and cuda.is_initialized())
    except Exception:
        return False

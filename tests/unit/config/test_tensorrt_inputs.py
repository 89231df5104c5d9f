"""Issue 15, TensorRT-LLM: a prebuilt engine and a LoRA adapter are local inputs; the pinned
release's refusals are errors of `lem config validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lem.cli import main
from lem.config.local_inputs import local_inputs, missing_inputs
from lem_harness.experiment import ExperimentConfig, with_absolute_paths


def trt(**fields: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "tensorrt", **fields})


def test_relative_engine_path_and_adapter_resolve_against_the_config_directory(tmp_path: Path) -> None:
    cfg = with_absolute_paths(trt(adapter="./lora", tensorrt={"engine_path": "engines/e1"}), tmp_path)
    assert cfg.adapter == str(tmp_path / "lora")
    assert cfg.tensorrt is not None and cfg.tensorrt.engine_path == str(tmp_path / "engines" / "e1")
    assert "engine_path" in cfg.tensorrt.model_fields_set  # still "given" for the build-key refusal
    assert (
        with_absolute_paths(trt(tensorrt={"engine_path": "/abs/e"}), tmp_path).tensorrt.engine_path
        == "/abs/e"
    )  # type: ignore[union-attr]


def test_engine_path_and_local_adapter_are_checked_inputs(tmp_path: Path) -> None:
    engine, adapter = tmp_path / "engine", tmp_path / "lora"
    cfg = trt(adapter=str(adapter), tensorrt={"engine_path": str(engine)})
    assert local_inputs(cfg) == [("adapter", str(adapter)), ("tensorrt.engine_path", str(engine))]
    assert missing_inputs(cfg) == [
        ("adapter", f"{adapter} does not exist"),
        ("tensorrt.engine_path", f"{engine} does not exist"),
    ]
    engine.write_text("not a directory")
    adapter.mkdir()
    assert missing_inputs(cfg) == [
        (
            "tensorrt.engine_path",
            f"{engine} is not a directory (tensorrt.engine_path names a TensorRT-LLM engine directory)",
        )
    ]
    engine.unlink()
    engine.mkdir()
    assert missing_inputs(cfg) == []


def test_a_hub_adapter_is_no_local_input() -> None:
    assert local_inputs(trt(adapter="org/lora")) == []  # refused by the TensorRT checks instead


@pytest.mark.parametrize(
    ("section", "adapter", "line"),
    [
        (
            "  extra_runtime_args:\n    iter_stat_max_iterations: 5\n",
            None,
            "error [TRT_UNSUPPORTED] tensorrt.extra_runtime_args: tensorrt.extra_runtime_args."
            "iter_stat_max_iterations is not an argument of TensorRT-LLM 1.0.0: did you mean "
            "'iter_stats_max_iterations'?",
        ),
        (
            "  quantization: int4_gptq\n",
            None,
            "error [TRT_UNSUPPORTED] tensorrt.quantization: tensorrt.quantization int4_gptq: TensorRT-LLM "
            "1.0.0's LLM API cannot build an int4 GPTQ engine",
        ),
        (
            "  draft_model: org/small\n",
            None,
            "error [TRT_UNSUPPORTED] tensorrt.draft_model: tensorrt.draft_model: TensorRT-LLM 1.0.0's LLM "
            "API runs a draft model (DraftTargetDecodingConfig) only on its PyTorch backend",
        ),
        (
            None,  # no tensorrt section: the adapter is still checked
            "org/lora",
            "error [TRT_UNSUPPORTED] adapter: adapter 'org/lora': TensorRT-LLM 1.0.0's LoRARequest reads a "
            "local directory and downloads nothing",
        ),
    ],
)
def test_validate_refuses_with_the_reason(
    tmp_path: Path, section: str | None, adapter: str | None, line: str
) -> None:
    path = tmp_path / "trt.yaml"
    head = "schema_version: '3.0.0'\nmodel_name: m\nbackend: tensorrt\n"
    body = f"adapter: {adapter}\n" if adapter else ""
    path.write_text(head + body + (f"tensorrt:\n{section}" if section else ""))
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1, result.output
    assert line in result.output


def test_validate_accepts_a_prebuilt_engine_that_exists(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    path = tmp_path / "trt.yaml"
    path.write_text(
        "schema_version: '3.0.0'\nmodel_name: m\nbackend: tensorrt\ntensorrt:\n  engine_path: engine\n"
        "  extra_runtime_args:\n    iter_stats_max_iterations: 100\n"
    )
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    missing = tmp_path / "other.yaml"
    missing.write_text(path.read_text().replace("engine_path: engine", "engine_path: nowhere"))
    result = CliRunner().invoke(main, ["config", "validate", str(missing)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'nowhere'} does not exist" in result.output

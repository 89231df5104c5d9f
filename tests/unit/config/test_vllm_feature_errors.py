"""Issue 15's vLLM keys at the host: each refusal lands on the line and key the user wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.config import ConfigError
from lem.config.loader import experiment_from_document
from lem.config.local_inputs import local_inputs, missing_inputs
from lem.config.yaml_source import parse_yaml
from lem_harness.experiment import ExperimentConfig

BAD = """\
model_name: org/model
backend: vllm
vllm:
  max_num_seqs: 4
  swap_space: 4
  quantization: bitsandbytes
  speculative: {model: org/draft}
  extra:
    max_num_seqs: 8
    kv_offloading_siz: 2
"""


def test_each_refusal_names_its_line_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        experiment_from_document(parse_yaml(BAD, "x.yaml"))
    where = [str(p).split(": ", 2)[:2] for p in info.value.problems]
    assert where == [
        ["x.yaml:5", "vllm.swap_space"],
        ["x.yaml:6", "vllm.quantization"],
        ["x.yaml:7", "vllm.speculative.model"],
        ["x.yaml:9", "vllm.extra.max_num_seqs"],
    ]
    text = "\n".join(str(p) for p in info.value.problems)
    assert "set it there, not in vllm.extra" in text


def test_a_typo_in_extra_names_its_line_and_the_closest_argument() -> None:
    text = BAD
    for line in (
        "    max_num_seqs: 8",
        "  swap_space: 4",
        "  quantization: bitsandbytes",
        "  speculative: {model: org/draft}",
    ):
        text = text.replace(line + "\n", "")
    with pytest.raises(ConfigError) as info:
        experiment_from_document(parse_yaml(text, "x.yaml"))
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:6: vllm.extra.kv_offloading_siz: 'kv_offloading_siz' is not an engine argument of vLLM 0.32 "
        "(did you mean 'kv_offloading_size'?); vllm.extra takes vllm.engine.arg_utils.EngineArgs fields only"
    ]


def test_a_local_adapter_is_a_checked_mounted_input(tmp_path: Path) -> None:
    adapter = tmp_path / "lora"
    cfg = ExperimentConfig(model_name="org/model", backend="vllm", adapter=str(adapter))
    assert local_inputs(cfg) == [("adapter", str(adapter))]
    assert missing_inputs(cfg) == [("adapter", f"{adapter} does not exist")]
    adapter.mkdir()
    assert missing_inputs(cfg) == [
        ("adapter", f"{adapter} holds no adapter_config.json (adapter names a PEFT LoRA adapter directory)")
    ]
    (adapter / "adapter_config.json").write_text("{}")
    assert missing_inputs(cfg) == []
    assert local_inputs(cfg.model_copy(update={"adapter": "org/lora"})) == []

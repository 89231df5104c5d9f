"""Issue 15's vLLM keys at the host: each refusal lands on the line and key the user wrote."""

from __future__ import annotations

import pytest

from lem.config import ConfigError
from lem.config.loader import experiment_from_document
from lem.config.yaml_source import parse_yaml

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
    text = BAD.replace("    max_num_seqs: 8\n", "").replace("  swap_space: 4\n", "")
    text = text.replace("  quantization: bitsandbytes\n", "").replace("  speculative: {model: org/draft}\n", "")
    with pytest.raises(ConfigError) as info:
        experiment_from_document(parse_yaml(text, "x.yaml"))
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:6: vllm.extra.kv_offloading_siz: 'kv_offloading_siz' is not an engine argument of vLLM 0.32 "
        "(did you mean 'kv_offloading_size'?); vllm.extra takes vllm.engine.arg_utils.EngineArgs fields only"
    ]

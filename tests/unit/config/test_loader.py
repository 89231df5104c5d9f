"""Loading experiments and campaigns: pydantic errors become file:line: key: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.config import (
    CampaignConfig,
    ConfigError,
    ExperimentConfig,
    detect_kind,
    load_any,
    load_campaign,
    load_experiment,
)
from lem.config.loader import experiment_from_document
from lem.config.yaml_source import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "configs" / "examples"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        experiment_from_document(parse_yaml(text, "x.yaml"))
    return [str(p) for p in info.value.problems]


def test_pytorch_example_loads_with_the_values_of_the_spec() -> None:
    cfg = load_experiment(EXAMPLES / "pytorch_example.yaml")
    assert (cfg.schema_version, cfg.model, cfg.backend, cfg.gpus) == (
        "3.0.0",
        "Qwen/Qwen2.5-0.5B",
        "pytorch",
        (0,),
    )
    assert (cfg.max_input_tokens, cfg.max_output_tokens, cfg.fp_precision, cfg.seed) == (
        512,
        128,
        "float16",
        42,
    )
    assert (cfg.dataset.source, cfg.dataset.sample_size) == ("ai_energy_score", 100)
    assert cfg.decoder.preset == "deterministic"
    w = cfg.warmup
    assert (w.mode, w.min_prompts, w.max_prompts, w.target_cv) == ("convergence", 5, 20, 0.05)
    assert (cfg.baseline.method, cfg.baseline.cache_ttl_seconds, cfg.timeseries.sample_rate_hz) == (
        "cache",
        3600,
        5,
    )
    assert cfg.pytorch is not None
    assert cfg.pytorch.model_dump() == {
        "batch_size": 8,
        "batching_strategy": "dynamic",
        "max_tokens_per_batch": None,
        "attn_implementation": "sdpa",
        "torch_compile": False,
        "torch_compile_backend": "inductor",
        "use_cache": True,
        "low_cpu_mem_usage": True,
    }


def test_vllm_and_tensorrt_examples_carry_their_sections() -> None:
    vllm = load_experiment(EXAMPLES / "vllm_example.yaml").vllm
    assert vllm is not None
    assert (vllm.max_num_seqs, vllm.max_model_len, vllm.gpu_memory_utilization, vllm.block_size) == (
        256,
        1024,
        0.9,
        16,
    )
    assert (vllm.enable_prefix_caching, vllm.enable_chunked_prefill, vllm.enforce_eager) == (
        True,
        True,
        False,
    )
    trt = load_experiment(EXAMPLES / "tensorrt_example.yaml").tensorrt
    assert trt is not None
    assert (trt.max_batch_size, trt.builder_opt_level, trt.tp_size, trt.quantization) == (8, 3, 1, "none")
    assert (trt.paged_kv_cache, trt.enable_chunked_context, trt.force_rebuild) == (True, True, False)


def test_load_any_detects_the_kind() -> None:
    assert isinstance(load_any(EXAMPLES / "campaign_example.yaml"), CampaignConfig)
    assert isinstance(load_any(EXAMPLES / "vllm_example.yaml"), ExperimentConfig)
    assert detect_kind({"model": "m", "backend": "vllm"}) == "experiment"
    assert detect_kind({"model": "m", "grid": {}}) == "campaign"


def test_the_wrong_loader_says_which_kind_the_file_is() -> None:
    with pytest.raises(ConfigError, match="this is a campaign file, not an experiment"):
        load_experiment(EXAMPLES / "campaign_example.yaml")
    with pytest.raises(ConfigError, match="this is an experiment file, not a campaign"):
        load_campaign(EXAMPLES / "pytorch_example.yaml")


def test_every_problem_of_a_file_is_reported_in_line_order() -> None:
    text = (
        "model: m\n"
        "batchsize: 8\n"
        "dataset:\n  source: jsonl\n  pth: p.jsonl\n"
        "pytorch:\n  batch_size: 0\n"
        "decoder:\n  preset: standrd\n"
    )
    assert problems(text) == [
        "x.yaml:2: batchsize: unknown key 'batchsize'; did you mean 'pytorch.batch_size' (it "
        "belongs in a section)?",
        "x.yaml:3: dataset.path: missing required key 'path'",
        "x.yaml:5: dataset.pth: unknown key 'pth'; did you mean 'path'?",
        "x.yaml:7: pytorch.batch_size: must be >= 1 (got 0)",
        "x.yaml:9: decoder.preset: 'standrd' is not allowed; choose one of 'deterministic', 'standard', "
        "'creative' or 'factual'; did you mean 'standard'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: m\nvllm: {}\n", "x.yaml:2: vllm: section 'vllm' given but backend is 'pytorch': "
            "remove 'vllm' or "
         "set backend: vllm"),
        ("model: m\nmax_output_tokens: 10\nmin_output_tokens: 20\n", "x.yaml:3: "
            "min_output_tokens: must be <= "
         "max_output_tokens"),
        ("model: m\ngpus: [0, 0]\n", "x.yaml:2: gpus: gpus lists a GPU twice: [0, 0]; list each id once"),
        ("model: m\nbackend: tensorrt\ntensorrt:\n  tp_size: 2\n", "x.yaml:4: tensorrt.tp_size: "
            "tensorrt.tp_size x "
         "tensorrt.pp_size = 2 x 1 = 2 GPU(s), but gpus lists 1 ([0]): the engine would use 2 and every "
         "listed GPU is measured, so list exactly 2 GPU(s) in gpus or change tensorrt.tp_size / "
         "tensorrt.pp_size"),
        ("model: m\ndataset:\n  source: synthetic\n  input_len_min: 50\n  input_len_max: 10\n",
         "x.yaml:4: dataset.input_len_min: must be <= dataset.input_len_max"),
        ("model: m\ndataset: {sample_size: 3}\n", "x.yaml:2: dataset: needs a 'source' key: one of "
         "'ai_energy_score', 'jsonl', 'synthetic'"),
        ("model: m\ndataset: hub\n", "x.yaml:2: dataset.source: unknown value 'hub'; choose one of "
         "'ai_energy_score', 'jsonl', 'synthetic'"),
        ("model: m\ngpus: 0\n", "x.yaml:2: gpus: must be a list such as [0, 1], not a number 0"),
        ("model: m\ndecoder: greedy\n", "x.yaml:2: decoder: must be a mapping of keys (keys such as preset, "
         "do_sample, temperature, top_p), not text 'greedy'"),
        ("model: m\ndocker:\n  shm_size: lots\n", "x.yaml:3: docker.shm_size: 'lots' does not "
            "have the required "
         "form (pattern ^[1-9][0-9]{0,5}[kmg]?$)"),
        ("model: [a]\n", "x.yaml:1: model: Input should be a valid string (got ['a'])"),
    ],
)  # fmt: skip
def test_one_clear_message_per_problem(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_misspelled_campaign_key_is_recognised() -> None:
    assert problems("campain_name: c\nmodel: m\n") == [
        "x.yaml:1: campain_name: unknown key 'campain_name'; did you mean 'campaign_name'? "
        "(that is a campaign key: this file was read as an experiment)"
    ]


def test_dataset_keys_are_checked_against_the_chosen_source() -> None:
    text = "model: m\ndataset:\n  source: ai_energy_score\n  path: p.jsonl\n  sample_sise: 5\n"
    assert problems(text) == [
        "x.yaml:4: dataset.path: unknown key 'path'; 'path' belongs to dataset source 'jsonl' "
        "(set source: jsonl)",
        "x.yaml:5: dataset.sample_sise: unknown key 'sample_sise'; did you mean 'sample_size'?",
    ]
    odd = "model: m\ndataset:\n  source: synthetic\n  colour: red\n"
    assert problems(odd) == [
        "x.yaml:4: dataset.colour: unknown key 'colour'; valid keys here: source, sample_size, "
        "input_len_distribution, input_len, input_len_min, input_len_max, input_len_std"
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("9.1.0", "x.yaml:1: schema_version: schema 9.1.0 is newer than this lem understands "
            "(3.0.0); upgrade lem "
         "or rewrite the file for schema 3.0.0"),
        ("v3", "x.yaml:1: schema_version: 'v3' is not a version like '3.0.0'"),
    ],
)  # fmt: skip
def test_unknown_schema_versions_are_errors(version: str, expected: str) -> None:
    assert problems(f"schema_version: '{version}'\nmodel: m\n") == [expected]


def test_older_or_other_minor_schema_versions_load() -> None:
    for version in ("2.0.0", "3.1", "3.0.7"):
        cfg = experiment_from_document(parse_yaml(f"schema_version: '{version}'\nmodel: m\n", "x.yaml"))
        assert cfg.schema_version == version


def test_schema_problem_is_reported_together_with_model_errors() -> None:
    assert problems("schema_version: '4.0.0'\nmodel: m\nseed: -1\n") == [
        "x.yaml:1: schema_version: schema 4.0.0 is newer than this lem understands (3.0.0); upgrade lem or "
        "rewrite the file for schema 3.0.0",
        "x.yaml:3: seed: must be >= 0 (got -1)",
    ]

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
from lem.config.loader import experiment_from_document, modernize
from lem.config.yaml_source import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "configs" / "examples"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        experiment_from_document(parse_yaml(text, "x.yaml"))
    return [str(p) for p in info.value.problems]


def test_pytorch_example_loads_with_the_values_of_the_spec() -> None:
    cfg = load_experiment(EXAMPLES / "pytorch_example.yaml")
    assert (cfg.schema_version, cfg.config_name, cfg.model_name, cfg.backend, cfg.gpus) == (
        "3.0.0",
        "pytorch-comprehensive",
        "Qwen/Qwen2.5-0.5B",
        "pytorch",
        (0,),
    )
    assert (cfg.max_input_tokens, cfg.max_output_tokens, cfg.fp_precision, cfg.random_seed) == (
        512,
        128,
        "float16",
        42,
    )
    assert cfg.dataset is not None and (cfg.dataset.name, cfg.dataset.sample_size) == ("ai_energy_score", 100)
    assert (cfg.num_input_prompts, cfg.prompt_count, cfg.dataset.repo_id) == (
        100,
        100,
        "AIEnergyScore/text_generation",
    )
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
        "torch_compile_backend": None,
        "use_cache": True,
        "low_cpu_mem_usage": True,
        "num_processes": 1,
        "load_in_4bit": False,
        "load_in_8bit": False,
        "bnb_4bit_compute_dtype": None,
        "bnb_4bit_quant_type": None,
        "bnb_4bit_use_double_quant": None,
        "cache_implementation": None,
        "min_p": None,
        "no_repeat_ngram_size": None,
        "beam_search": None,
        "assisted_generation": None,
        "extra": {},
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
    assert (trt.kv_cache_type, trt.enable_chunked_context, trt.force_rebuild) == ("paged", True, False)


def test_load_any_detects_the_kind() -> None:
    assert isinstance(load_any(EXAMPLES / "campaign_example.yaml"), CampaignConfig)
    assert isinstance(load_any(EXAMPLES / "vllm_example.yaml"), ExperimentConfig)
    assert detect_kind({"model_name": "m", "backend": "vllm"}) == "experiment"
    assert detect_kind({"model_name": "m", "grid": {}}) == "campaign"


def test_the_wrong_loader_says_which_kind_the_file_is() -> None:
    with pytest.raises(ConfigError, match="this is a campaign file, not an experiment"):
        load_experiment(EXAMPLES / "campaign_example.yaml")
    with pytest.raises(ConfigError, match="this is an experiment file, not a campaign"):
        load_campaign(EXAMPLES / "pytorch_example.yaml")


def test_every_problem_of_a_file_is_reported_in_line_order() -> None:
    text = (
        "model_name: m\n"
        "batchsize: 8\n"
        "prompts:\n  type: file\n  pth: p.jsonl\n"
        "pytorch:\n  batch_size: 0\n"
        "decoder:\n  preset: standrd\n"
    )
    assert problems(text) == [
        "x.yaml:2: batchsize: unknown key 'batchsize'; did you mean 'pytorch.batch_size' (it "
        "belongs in a section)?",
        "x.yaml:3: prompts.path: missing required key 'path'",
        "x.yaml:5: prompts.pth: unknown key 'pth'; did you mean 'path'?",
        "x.yaml:7: pytorch.batch_size: must be >= 1 (got 0)",
        "x.yaml:9: decoder.preset: 'standrd' is not allowed; choose one of 'deterministic', 'standard', "
        "'creative' or 'factual'; did you mean 'standard'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_name: m\nvllm: {}\n", "x.yaml:2: vllm: section 'vllm' given but backend is 'pytorch': "
            "remove 'vllm' or "
         "set backend: vllm"),
        ("model_name: m\nmax_output_tokens: 10\nmin_output_tokens: 20\n", "x.yaml:3: "
            "min_output_tokens: must be <= "
         "max_output_tokens"),
        ("model_name: m\ngpus: [0, 0]\n", "x.yaml:2: gpus: gpus lists a GPU twice: [0, 0]; list each id once"),  # noqa: E501
        ("model_name: m\nbackend: tensorrt\ntensorrt:\n  tp_size: 2\n", "x.yaml:4: tensorrt.tp_size: "
            "tensorrt.tp_size x "
         "tensorrt.pp_size = 2 x 1 = 2 GPU(s), but gpus lists 1 ([0]): the engine would use 2 and every "
         "listed GPU is measured, so list exactly 2 GPU(s) in gpus or change tensorrt.tp_size / "
         "tensorrt.pp_size"),
        ("model_name: m\nprompts:\n  type: synthetic\n  input_len_min: 50\n  input_len_max: 10\n",
         "x.yaml:4: prompts.input_len_min: must be <= prompts.input_len_max"),
        ("model_name: m\nprompts: {sample_size: 3}\n", "x.yaml:2: prompts: needs a 'type' key: one of "
         "'file', 'synthetic', 'huggingface'"),
        ("model_name: m\nprompts: {type: hub}\n", "x.yaml:2: prompts.type: unknown value 'hub'; choose one of "  # noqa: E501
         "'file', 'synthetic', 'huggingface'"),
        ("model_name: m\ndataset: hub\n", "x.yaml:2: dataset: 'hub' is neither a built-in "
         "dataset (ai-energy-score, ai_energy_score, alpaca, gsm8k, mmlu, sharegpt) nor a hub id like "
         "'org/dataset'; for a local file use "
         "prompts: {type: file, path: ...}"),
        ("model_name: m\ngpus: 0\n", "x.yaml:2: gpus: must be a list such as [0, 1], not a number 0"),
        ("model_name: m\ndecoder: greedy\n", "x.yaml:2: decoder: must be a mapping of keys (keys such as preset, "  # noqa: E501
         "do_sample, temperature, top_p), not text 'greedy'"),
        ("model_name: m\ndocker:\n  shm_size: lots\n", "x.yaml:3: docker.shm_size: 'lots' does not "
            "have the required "
         "form (pattern ^[1-9][0-9]{0,5}[kmg]?$)"),
        ("model_name: [a]\n", "x.yaml:1: model_name: Input should be a valid string (got ['a'])"),
    ],
)  # fmt: skip
def test_one_clear_message_per_problem(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_misspelled_campaign_key_is_recognised() -> None:
    assert problems("campain_name: c\nmodel_name: m\n") == [
        "x.yaml:1: campain_name: unknown key 'campain_name'; did you mean 'campaign_name'? "
        "(that is a campaign key: this file was read as an experiment)"
    ]


def test_prompt_keys_are_checked_against_the_chosen_type() -> None:
    text = "model_name: m\nprompts:\n  type: synthetic\n  path: p.jsonl\n  sample_sise: 5\n"
    assert problems(text) == [
        "x.yaml:4: prompts.path: unknown key 'path'; 'path' belongs to prompts type 'file' (set type: file)",
        "x.yaml:5: prompts.sample_sise: unknown key 'sample_sise'; did you mean 'sample_size'?",
    ]
    odd = "model_name: m\nprompts:\n  type: synthetic\n  colour: red\n"
    assert problems(odd) == [
        "x.yaml:4: prompts.colour: unknown key 'colour'; valid keys here: type, sample_size, "
        "input_len_distribution, input_len, input_len_min, input_len_max, input_len_std"
    ]
    hub = "model_name: m\ndataset:\n  name: ai_energy_score\n  colum: text\n"
    assert problems(hub) == ["x.yaml:4: dataset.colum: unknown key 'colum'; did you mean 'column'?"]


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("9.1.0", "schema 9.1.0 is newer than this lem; some fields may be unknown to it. Read as schema 3.0.0"),  # noqa: E501
        ("v3", "'v3' is not a version like '3.0.0'; the file is read as schema 3.0.0"),
        ("2.0.0", "file is written for schema 2.0.0; some fields may be deprecated or renamed"),
        ("3.0.7", "file is written for schema 3.0.7"),
    ],
)  # fmt: skip
def test_any_other_schema_version_is_a_non_blocking_warning(version: str, fragment: str) -> None:
    document = modernize(parse_yaml(f"schema_version: '{version}'\nmodel_name: m\n", "x.yaml"))
    assert experiment_from_document(document).schema_version == version
    [notice] = document.notices
    assert (notice.code, notice.severity, notice.param) == (
        "SCHEMA_VERSION_MISMATCH",
        "warning",
        "schema_version",
    )
    assert fragment in notice.message


def test_missing_schema_version_is_an_info_and_the_current_one_says_nothing() -> None:
    [notice] = modernize(parse_yaml("model_name: m\n", "x.yaml")).notices
    assert (notice.code, notice.severity) == ("SCHEMA_VERSION_MISSING", "info")
    assert modernize(parse_yaml("schema_version: '3.0.0'\nmodel_name: m\n", "x.yaml")).notices == ()

"""ExperimentConfig → GenerationConfig / BitsAndBytesConfig arguments, checked against the installed
Transformers (BitsAndBytesConfig builds without bitsandbytes or a GPU)."""

from __future__ import annotations

from typing import Any

import pytest

from lem_harness.backend_sections import PyTorchConfig
from lem_harness.engines.pytorch_args import (
    assistant_kwargs,
    generation_kwargs,
    pytorch_section,
    quantization_kwargs,
    quantization_problem,
)
from lem_harness.experiment import ExperimentConfig


def _config(**changes: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "max_output_tokens": 32, **changes})


BASE = {
    "max_new_tokens": 32,
    "do_sample": False,
    "use_cache": True,
    "pad_token_id": 0,
    "eos_token_id": [2],
    "repetition_penalty": 1.0,
}


def test_the_default_config_sets_only_lems_own_keys() -> None:
    assert generation_kwargs(_config(), 0, [2]) == BASE
    assert generation_kwargs(_config(), 0, [2], output_tokens=1) == {
        **BASE,
        "max_new_tokens": 1,
        "min_new_tokens": 1,
    }


def test_new_generation_keys_and_extra() -> None:
    config = _config(
        decoder={"preset": "standard"},
        pytorch={
            "cache_implementation": "static",
            "min_p": 0.05,
            "no_repeat_ngram_size": 3,
            "extra": {"typical_p": 0.9, "suppress_tokens": [7, 8]},
        },
    )
    assert generation_kwargs(config, 0, [2]) == {
        **BASE,
        "do_sample": True,
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 50,
        "cache_implementation": "static",
        "min_p": 0.05,
        "no_repeat_ngram_size": 3,
        "typical_p": 0.9,
        "suppress_tokens": [7, 8],
    }


def test_beam_search_returns_one_sequence_and_takes_its_ngram_size_from_either_place() -> None:
    config = _config(
        pytorch={
            "beam_search": {
                "num_beams": 3,
                "length_penalty": 0.5,
                "early_stopping": True,
                "no_repeat_ngram_size": 2,
            }
        }
    )
    assert generation_kwargs(config, 0, [2]) == {
        **BASE,
        "num_beams": 3,
        "num_return_sequences": 1,
        "length_penalty": 0.5,
        "early_stopping": True,
        "no_repeat_ngram_size": 2,
    }
    disabled = _config(pytorch={"beam_search": {"enabled": False, "num_beams": 3}})
    assert generation_kwargs(disabled, 0, [2]) == BASE


def test_assisted_generation_drafts_a_constant_number_of_tokens() -> None:
    config = _config(pytorch={"assisted_generation": {"model": "org/draft", "num_tokens": 3}})
    assert generation_kwargs(config, 0, [2]) == BASE
    assert assistant_kwargs(pytorch_section(config)) == {
        "num_assistant_tokens": 3,
        "num_assistant_tokens_schedule": "constant",
        "assistant_confidence_threshold": 0.0,
    }
    assert assistant_kwargs(PyTorchConfig()) == {}


def test_the_kwargs_build_a_valid_generation_config() -> None:
    transformers = pytest.importorskip("transformers")
    config = _config(
        decoder={"preset": "factual"},
        pytorch={"min_p": 0.1, "beam_search": {"num_beams": 2}, "extra": {"typical_p": 0.9}},
    )
    built = transformers.GenerationConfig(**generation_kwargs(config, 0, [2]))
    built.validate(strict=True)
    assert (built.num_beams, built.min_p, built.typical_p, built.top_k) == (2, 0.1, 0.9, 40)


def test_bitsandbytes_mapping() -> None:
    assert quantization_kwargs(PyTorchConfig()) is None
    assert quantization_kwargs(PyTorchConfig(load_in_8bit=True)) == {"load_in_8bit": True}
    assert quantization_kwargs(PyTorchConfig(load_in_4bit=True)) == {"load_in_4bit": True}
    full = PyTorchConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype="bfloat16",
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
    )
    assert quantization_kwargs(full) == {
        "load_in_4bit": True,
        "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
    }


def test_bitsandbytes_mapping_builds_transformers_config_without_a_gpu() -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    full = PyTorchConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype="bfloat16",
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
    )
    built = transformers.BitsAndBytesConfig(**quantization_kwargs(full))
    assert (built.load_in_4bit, built.load_in_8bit) == (True, False)
    assert built.bnb_4bit_compute_dtype is torch.bfloat16
    assert (built.bnb_4bit_quant_type, built.bnb_4bit_use_double_quant) == ("nf4", True)
    defaults = transformers.BitsAndBytesConfig(**quantization_kwargs(PyTorchConfig(load_in_4bit=True)))
    assert (defaults.bnb_4bit_compute_dtype, defaults.bnb_4bit_quant_type) == (torch.float32, "fp4")
    eight = transformers.BitsAndBytesConfig(**quantization_kwargs(PyTorchConfig(load_in_8bit=True)))
    assert (eight.load_in_4bit, eight.load_in_8bit) == (False, True)


def test_bitsandbytes_refusals() -> None:
    four, eight = PyTorchConfig(load_in_4bit=True), PyTorchConfig(load_in_8bit=True)
    assert quantization_problem(PyTorchConfig(), "cpu", bitsandbytes_installed=False) is None
    assert quantization_problem(four, "cuda", bitsandbytes_installed=True) is None
    assert quantization_problem(eight, "cpu", bitsandbytes_installed=True) == (
        "pytorch.load_in_8bit needs a CUDA GPU (bitsandbytes quantises on the GPU) and this process has "
        "none: "
        "run on a GPU or remove the key"
    )
    assert quantization_problem(four, "cuda", bitsandbytes_installed=False) == (
        "pytorch.load_in_4bit needs the bitsandbytes package, which this image lacks: pip install "
        "bitsandbytes"
    )

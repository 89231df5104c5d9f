"""ExperimentConfig → Transformers keyword arguments (pure; no torch or transformers import).

``generation_kwargs`` builds ``GenerationConfig(...)``; ``quantization_kwargs`` builds
``BitsAndBytesConfig(...)``. Both are checked against the installed Transformers in
tests/unit/harness/test_pytorch_args.py.

Counting under beam search and assisted generation (docs/backends.md):

- beam search returns one sequence per prompt (``num_return_sequences`` stays 1): its tokens, up
  to and including the first EOS, are the output tokens; the other beams' tokens are work, not
  output (they show up in energy per output token);
- assisted generation outputs only the tokens the main model accepted (and the one it adds per
  step); rejected draft tokens are not counted. When streaming, the tokens a verification step
  accepts arrive together: the first of them carries the step's latency, the others an
  inter-token latency of 0.
"""

from __future__ import annotations

from typing import Any

from lem_harness.backend_sections import PyTorchConfig
from lem_harness.experiment import ExperimentConfig


def pytorch_section(config: ExperimentConfig) -> PyTorchConfig:
    section = config.backend_section()
    if not isinstance(section, PyTorchConfig):
        raise ValueError(f"backend is '{config.backend}', not 'pytorch'")
    return section


def generation_kwargs(
    config: ExperimentConfig, pad_id: int, eos_ids: list[int] | None, output_tokens: int | None = None
) -> dict[str, Any]:
    """``GenerationConfig`` arguments; ``output_tokens`` fixes the count (the prefill-only pass)."""
    section = pytorch_section(config)
    sampling = config.decoder.resolved()
    kwargs: dict[str, Any] = dict(section.extra)
    kwargs.update(
        max_new_tokens=config.max_output_tokens if output_tokens is None else output_tokens,
        do_sample=bool(sampling["do_sample"]),
        use_cache=section.use_cache,
        pad_token_id=pad_id,
        eos_token_id=eos_ids,
        repetition_penalty=float(sampling["repetition_penalty"]),
    )
    if output_tokens is not None:
        kwargs["min_new_tokens"] = output_tokens
    elif config.min_output_tokens > 0:
        # min_new_tokens masks EOS until reached: min == max gives fixed-length outputs.
        kwargs["min_new_tokens"] = config.min_output_tokens
    if kwargs["do_sample"]:
        kwargs.update(temperature=sampling["temperature"], top_p=sampling["top_p"], top_k=sampling["top_k"])
    optional = {
        "cache_implementation": section.cache_implementation,
        "min_p": section.min_p,
        "no_repeat_ngram_size": section.resolved_no_repeat_ngram_size,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    kwargs.update(_beam_kwargs(section))
    return kwargs


def assistant_kwargs(section: PyTorchConfig) -> dict[str, Any]:
    """Settings of the draft model's own ``generation_config`` (Transformers 5.24 reads the draft
    length there, not in the main model's): exactly ``num_tokens`` drafted per step, no schedule
    changing it between steps, no early stop of a draft on low confidence."""
    if section.assisted_generation is None:
        return {}
    return {
        "num_assistant_tokens": section.assisted_generation.num_tokens,
        "num_assistant_tokens_schedule": "constant",
        "assistant_confidence_threshold": 0.0,
    }


def _beam_kwargs(section: PyTorchConfig) -> dict[str, Any]:
    beams = section.beam_search
    if beams is None or not beams.enabled:
        return {}
    return {
        "num_beams": beams.num_beams,
        "num_return_sequences": 1,
        "length_penalty": beams.length_penalty,
        "early_stopping": beams.early_stopping,
    }


def quantization_kwargs(section: PyTorchConfig) -> dict[str, Any] | None:
    """``BitsAndBytesConfig`` arguments (None: load unquantised). Unset 4-bit options are left to
    Transformers' defaults (compute dtype float32, quant type fp4, no double quantisation)."""
    if section.load_in_8bit:
        return {"load_in_8bit": True}
    if not section.load_in_4bit:
        return None
    kwargs: dict[str, Any] = {"load_in_4bit": True}
    optional = {
        "bnb_4bit_compute_dtype": section.bnb_4bit_compute_dtype,
        "bnb_4bit_quant_type": section.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": section.bnb_4bit_use_double_quant,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    return kwargs


def quantization_problem(section: PyTorchConfig, device: str, bitsandbytes_installed: bool) -> str | None:
    """Why this process cannot load the model with bitsandbytes (None: it can, or none asked)."""
    if quantization_kwargs(section) is None:
        return None
    key = "pytorch.load_in_4bit" if section.load_in_4bit else "pytorch.load_in_8bit"
    if device != "cuda":
        return (
            f"{key} needs a CUDA GPU (bitsandbytes quantises on the GPU) and this process has none: "
            "run on a GPU or remove the key"
        )
    if not bitsandbytes_installed:
        return f"{key} needs the bitsandbytes package, which this image lacks: pip install bitsandbytes"
    return None

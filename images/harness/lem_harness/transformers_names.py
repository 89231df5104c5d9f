"""Names the pinned Transformers release accepts, as plain data (the host validates with them and
never imports torch or transformers).

Written from Transformers 5.24.0 (images/pins.toml, ``pytorch.engine_version``);
tests/unit/harness/test_transformers_names.py checks each table against the installed library, so
an upgrade that adds, renames or drops a name fails CI until this file is updated.
"""

from __future__ import annotations

import difflib

TRANSFORMERS_VERSION = "5.24.0"

# ``GenerationConfig().to_dict()`` keys without the private ``_`` ones: what ``generate`` reads.
GENERATION_CONFIG_FIELDS: frozenset[str] = frozenset({
    'assistant_confidence_threshold', 'assistant_early_exit', 'assistant_ensemble_weight',
    'assistant_lookbehind', 'bad_words_ids', 'begin_suppress_tokens', 'bos_token_id', 'cache_config',
    'cache_implementation', 'compile_config', 'constraints', 'continuous_batching_config',
    'decoder_start_token_id', 'disable_compile', 'diversity_penalty', 'do_sample', 'dola_layers',
    'early_stopping', 'encoder_no_repeat_ngram_size', 'encoder_repetition_penalty', 'eos_token_id',
    'epsilon_cutoff', 'eta_cutoff', 'exponential_decay_length_penalty', 'force_words_ids',
    'forced_bos_token_id', 'forced_eos_token_id', 'guidance_scale', 'is_assistant', 'length_penalty',
    'low_memory', 'max_cache_len', 'max_length', 'max_matching_ngram_size', 'max_new_tokens', 'max_time',
    'min_length', 'min_new_tokens', 'min_p', 'no_repeat_ngram_size', 'num_assistant_tokens',
    'num_assistant_tokens_schedule', 'num_beam_groups', 'num_beams', 'num_return_sequences',
    'output_attentions', 'output_hidden_states', 'output_logits', 'output_scores', 'pad_token_id',
    'penalty_alpha', 'prefill_chunk_size', 'prompt_lookup_num_tokens', 'remove_invalid_values',
    'renormalize_logits', 'repetition_penalty', 'return_dict_in_generate', 'sequence_bias',
    'speculation_type', 'stop_strings', 'suppress_tokens', 'target_lookbehind', 'temperature',
    'token_healing', 'top_h', 'top_k', 'top_p', 'transformers_version', 'typical_p', 'use_cache', 'use_mtp',
    'watermarking_config',
})  # fmt: skip

# ``transformers.generation.configuration_utils.ALL_CACHE_IMPLEMENTATIONS``.
CACHE_IMPLEMENTATIONS: tuple[str, ...] = (
    "static",
    "offloaded_static",
    "sliding_window",
    "hybrid",
    "hybrid_chunked",
    "offloaded_hybrid",
    "offloaded_hybrid_chunked",
    "dynamic",
    "offloaded",
    "quantized",
)

# GenerationConfig fields ``pytorch.extra`` may not set, each with what to write instead: lem sets
# them itself (from the schema's own keys), or they would change what ``generate`` returns and so
# what lem counts.
RESERVED_GENERATE_KEYS: dict[str, str] = {
    "max_new_tokens": "max_output_tokens",
    "max_length": "max_output_tokens",
    "min_new_tokens": "min_output_tokens",
    "min_length": "min_output_tokens",
    "do_sample": "decoder.do_sample or decoder.preset",
    "temperature": "decoder.temperature",
    "top_p": "decoder.top_p",
    "top_k": "decoder.top_k",
    "repetition_penalty": "decoder.repetition_penalty",
    "use_cache": "pytorch.use_cache",
    "cache_implementation": "pytorch.cache_implementation",
    "min_p": "pytorch.min_p",
    "no_repeat_ngram_size": "pytorch.no_repeat_ngram_size",
    "num_beams": "pytorch.beam_search.num_beams",
    "length_penalty": "pytorch.beam_search.length_penalty",
    "early_stopping": "pytorch.beam_search.early_stopping",
    "num_assistant_tokens": "pytorch.assisted_generation.num_tokens",
    "pad_token_id": "nothing: lem uses the tokenizer's",
    "eos_token_id": "nothing: lem uses the model's; min_output_tokens masks it",
    "num_return_sequences": "nothing: lem measures one sequence per prompt",
    "return_dict_in_generate": "nothing: lem reads the generated ids",
    "output_scores": "nothing: lem reads the generated ids",
    "output_logits": "nothing: lem reads the generated ids",
    "output_attentions": "nothing: lem reads the generated ids",
    "output_hidden_states": "nothing: lem reads the generated ids",
    "transformers_version": "nothing: it is recorded, not set",
    "is_assistant": "nothing: set by assisted_generation",
}

EXTRA_GENERATE_KEYS: frozenset[str] = GENERATION_CONFIG_FIELDS - RESERVED_GENERATE_KEYS.keys()


def extra_key_problem(key: str) -> str | None:
    """Why ``pytorch.extra.<key>`` is refused (None: Transformers' ``generate`` accepts it)."""
    if key in EXTRA_GENERATE_KEYS:
        return None
    if key in RESERVED_GENERATE_KEYS:
        return f"pytorch.extra.{key} is set by lem: use {RESERVED_GENERATE_KEYS[key]}"
    near = difflib.get_close_matches(key, sorted(GENERATION_CONFIG_FIELDS), n=1, cutoff=0.6)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return (
        f"pytorch.extra.{key} is not a generation setting of Transformers {TRANSFORMERS_VERSION}{hint} "
        "(keys are GenerationConfig fields)"
    )

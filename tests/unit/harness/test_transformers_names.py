"""The pinned Transformers names (read by the host, which never imports transformers) against the
installed library, and the messages ``pytorch.extra`` keys get."""

from __future__ import annotations

import pytest

from lem_harness.transformers_names import (
    CACHE_IMPLEMENTATIONS,
    EXTRA_GENERATE_KEYS,
    GENERATION_CONFIG_FIELDS,
    RESERVED_GENERATE_KEYS,
    TRANSFORMERS_VERSION,
    extra_key_problem,
)


def test_the_tables_match_the_installed_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.generation import configuration_utils

    assert transformers.__version__ == TRANSFORMERS_VERSION
    fields = {k for k in transformers.GenerationConfig().to_dict() if not k.startswith("_")}
    assert fields == GENERATION_CONFIG_FIELDS
    assert tuple(configuration_utils.ALL_CACHE_IMPLEMENTATIONS) == CACHE_IMPLEMENTATIONS


def test_the_version_is_the_pinned_engine_version() -> None:
    from pathlib import Path

    import tomllib

    pins = tomllib.loads((Path(__file__).parents[3] / "images" / "pins.toml").read_text())
    assert pins["pytorch"]["engine_version"] == TRANSFORMERS_VERSION


def test_reserved_keys_are_real_fields_and_not_extra_keys() -> None:
    assert set(RESERVED_GENERATE_KEYS) <= GENERATION_CONFIG_FIELDS
    assert not set(RESERVED_GENERATE_KEYS) & EXTRA_GENERATE_KEYS
    assert len(EXTRA_GENERATE_KEYS) == len(GENERATION_CONFIG_FIELDS) - len(RESERVED_GENERATE_KEYS) == 45


def test_extra_key_messages() -> None:
    assert extra_key_problem("typical_p") is None
    assert extra_key_problem("suppress_tokens") is None
    assert extra_key_problem("typicl_p") == (
        "pytorch.extra.typicl_p is not a generation setting of Transformers 5.24.0; did you mean "
        "'typical_p'? (keys are GenerationConfig fields)"
    )
    assert extra_key_problem("zzz") == (
        "pytorch.extra.zzz is not a generation setting of Transformers 5.24.0 (keys are GenerationConfig "
        "fields)"
    )
    assert (
        extra_key_problem("num_beams")
        == "pytorch.extra.num_beams is set by lem: use pytorch.beam_search.num_beams"
    )
    assert (
        extra_key_problem("max_new_tokens")
        == "pytorch.extra.max_new_tokens is set by lem: use max_output_tokens"
    )

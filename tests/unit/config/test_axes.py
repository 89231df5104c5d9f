"""Axis resolution: which key(s) an axis sets, for which of the listed backends."""

from __future__ import annotations

import pytest

from lem.config.axes import AxisError, resolve_axis, valid_axes


def test_batch_size_alias_maps_to_each_backend_limit() -> None:
    target = resolve_axis("batch_size", ("pytorch", "vllm", "tensorrt"))
    assert target.paths == {
        "pytorch": ("pytorch", "batch_size"),
        "vllm": ("vllm", "max_num_seqs"),
        "tensorrt": ("tensorrt", "max_batch_size"),
    }
    assert resolve_axis("batch_size", ("vllm",)).paths == {"vllm": ("vllm", "max_num_seqs")}


def test_top_level_and_shared_section_axes_apply_to_every_backend() -> None:
    assert resolve_axis("fp_precision", ("pytorch", "vllm")).paths == {
        "pytorch": ("fp_precision",),
        "vllm": ("fp_precision",),
    }
    assert resolve_axis("decoder.preset", ("vllm",)).paths == {"vllm": ("decoder", "preset")}
    assert resolve_axis("prompts.input_len", ("pytorch",)).paths == {"pytorch": ("prompts", "input_len")}


def test_backend_path_applies_to_its_backend_only() -> None:
    target = resolve_axis("vllm.enable_prefix_caching", ("pytorch", "vllm"))
    assert target.paths == {"vllm": ("vllm", "enable_prefix_caching")}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("pytorch.batch_size", "sets a pytorch setting but grid.backends lists only vllm"),
        ("max_num_seqs", "did you mean 'vllm.max_num_seqs'?"),
        ("fp_precison", "did you mean 'fp_precision'?"),
        ("vllm.max_num_seqs.extra", "unknown axis"),
        ("warmup", "'warmup' is a section; vary one of its keys, e.g. 'warmup.enabled'"),
        ("schema_version", "set schema_version once at the top of the campaign"),
    ],
)
def test_bad_axes_name_valid_choices(name: str, fragment: str) -> None:
    with pytest.raises(AxisError) as info:
        resolve_axis(name, ("vllm",))
    assert fragment in str(info.value)


def test_valid_axes_exclude_unlisted_backends_and_sections() -> None:
    axes = valid_axes(("pytorch",))
    assert axes[:3] == ["batch_size", "model_name", "gpus"]
    assert "pytorch.batch_size" in axes
    assert not any(a.startswith(("vllm.", "tensorrt.")) for a in axes)
    assert "decoder" not in axes and "backend" not in axes

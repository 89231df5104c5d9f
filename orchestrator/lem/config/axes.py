"""Grid axes: which experiment key(s) an axis name sets, for which backends.

An axis is one of
- a top-level experiment field (``fp_precision``, ``max_output_tokens``): every backend;
- a dotted path into a shared section (``decoder.preset``, ``dataset.sample_size``): every backend;
- a dotted backend path (``vllm.enable_prefix_caching``): that backend only;
- the alias ``batch_size``: ``pytorch.batch_size`` / ``vllm.max_num_seqs`` / ``tensorrt.max_batch_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lem.config.fields import experiment_paths, experiment_sections, field_names, suggest
from lem_harness.schema_base import BACKENDS

BATCH_ALIAS: dict[str, tuple[str, str]] = {
    "pytorch": ("pytorch", "batch_size"),
    "vllm": ("vllm", "max_num_seqs"),
    "tensorrt": ("tensorrt", "max_batch_size"),
}
ALIASES: dict[str, dict[str, tuple[str, str]]] = {"batch_size": BATCH_ALIAS}
NOT_AXES = {
    "backend": "list backends in grid.backends instead",
    "config_name": "names are generated for each configuration",
    "schema_version": "set schema_version once at the top of the campaign",
}


class AxisError(ValueError):
    """An axis name that cannot be used with the listed backends."""


@dataclass(frozen=True)
class AxisTarget:
    """What an axis sets: ``backend -> key path`` for each listed backend it applies to."""

    name: str
    paths: dict[str, tuple[str, ...]]


def resolve_axis(name: str, backends: Sequence[str]) -> AxisTarget:
    """Resolve ``name`` for ``backends``; raises ``AxisError`` naming the valid choices."""
    if name in NOT_AXES:
        raise AxisError(f"'{name}' cannot be an axis: {NOT_AXES[name]}")
    if name in ALIASES:
        return AxisTarget(name, {b: ALIASES[name][b] for b in backends})
    parts = tuple(name.split("."))
    if len(parts) > 2 or name not in experiment_paths():
        raise AxisError(f"unknown axis '{name}'{_hint(name, backends)}")
    if len(parts) == 1 and parts[0] in experiment_sections():
        raise AxisError(f"'{name}' is a section; vary one of its keys, e.g. '{name}.{_first_key(name)}'")
    if parts[0] in BACKENDS:
        if parts[0] not in backends:
            raise AxisError(
                f"axis '{name}' sets a {parts[0]} setting but grid.backends lists only "
                f"{', '.join(backends)}; add {parts[0]} to grid.backends or choose one of: "
                f"{', '.join(valid_axes(backends)[:12])}, ..."
            )
        return AxisTarget(name, {parts[0]: parts})
    return AxisTarget(name, dict.fromkeys(backends, parts))


def valid_axes(backends: Sequence[str]) -> list[str]:
    """Axis names usable with ``backends`` (aliases first, then top-level fields, then paths)."""
    out = list(ALIASES)
    sections = experiment_sections()
    for path in experiment_paths():
        head = path.split(".", 1)[0]
        if path in NOT_AXES or (path in sections) or (head in BACKENDS and head not in backends):
            continue
        out.append(path)
    return out


def _hint(name: str, backends: Sequence[str]) -> str:
    near = suggest(name, valid_axes(backends))
    if near is None and "." not in name:
        homes = [p for p in valid_axes(backends) if p.endswith(f".{name}")]
        near = homes[0] if homes else None
    if near:
        return f"; did you mean '{near}'?"
    return (
        "; an axis is 'batch_size', a top-level experiment key (e.g. fp_precision, max_output_tokens) "
        f"or a dotted path such as {', '.join(f'{b}.<key>' for b in backends)} or decoder.preset"
    )


def _first_key(section: str) -> str:
    return field_names(experiment_sections()[section])[0]

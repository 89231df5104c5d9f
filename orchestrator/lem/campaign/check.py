"""Check one config file of either kind: load, expand (campaigns), collect advice.

``check_file`` is the API behind ``lem config validate``; ``campaign_warnings``
adds the advice that needs the expanded configurations (duplicates, per-config
advice grouped across configurations, batch limits against the batch axis).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lem.campaign.expand import Expansion, expand_campaign
from lem.config.advice import validate_config
from lem.config.campaign import CampaignConfig
from lem.config.errors import ConfigError, ConfigProblem, ConfigWarning
from lem.config.loader import campaign_from_document, detect_kind, experiment_from_document, read_document
from lem.config.local_inputs import MISSING_FIX, missing_inputs
from lem.config.overrides import override_warnings
from lem.config.yaml_source import YamlDocument, format_path
from lem_harness.experiment import ExperimentConfig, with_absolute_paths

_NAMES_SHOWN = 3


@dataclass(frozen=True)
class FileReport:
    """What ``lem config validate`` says about one file."""

    file: str
    kind: Literal["experiment", "campaign"] | None  # None when the file could not be read as YAML
    problems: tuple[ConfigProblem, ...] = ()
    warnings: tuple[ConfigWarning, ...] = ()
    summary: str = ""

    def passes(self, strict: bool = False) -> bool:
        """Valid: no problem and no error-severity advice (``strict``: no warning either)."""
        failing = ("error", "warning") if strict else ("error",)
        return not self.problems and not any(w.severity in failing for w in self.warnings)

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "valid": self.passes(strict),
            "summary": self.summary,
            "problems": [vars(p) for p in self.problems],
            "warnings": [vars(w) for w in self.warnings],
        }


def check_file(path: Path) -> FileReport:
    """Load ``path`` as whichever kind it is and report its problems and advice."""
    kind: Literal["experiment", "campaign"] | None = None
    try:
        document = read_document(path)
        kind = detect_kind(document.data)
        if kind == "experiment":
            config = experiment_from_document(document)
            summary = f"experiment, backend {config.backend}"
            problems = experiment_input_problems(document, with_absolute_paths(config, path.resolve().parent))
            warnings = (*document.notices, *validate_config(config))
            return FileReport(str(path), kind, tuple(problems), warnings, summary)
        campaign = campaign_from_document(document)
        expansion = expand_campaign(campaign, path.parent)
        problems = campaign_input_problems(campaign, expansion)
        warnings = (*load_notices(campaign, expansion), *campaign_warnings(campaign, expansion))
        return FileReport(str(path), kind, tuple(problems), warnings, campaign_summary(campaign, expansion))
    except ConfigError as exc:
        return FileReport(str(path), kind, problems=tuple(exc.problems))


def experiment_input_problems(document: YamlDocument, config: ExperimentConfig) -> list[ConfigProblem]:
    """Local model / prompts files that ``lem campaign run`` would refuse (``config``: paths absolute)."""
    return [
        ConfigProblem(
            document.file, document.line_of(tuple(key.split("."))), key, f"{message}: {MISSING_FIX}"
        )
        for key, message in missing_inputs(config)
    ]


def campaign_input_problems(campaign: CampaignConfig, expansion: Expansion) -> list[ConfigProblem]:
    """The same for every configuration of a campaign, one problem per missing path."""
    document = campaign.source or YamlDocument(file="<campaign>", data={})
    found: dict[tuple[str, str], list[str]] = {}
    for expanded in expansion.configs:
        for key, message in missing_inputs(expanded.config):
            found.setdefault((key, message), []).append(expanded.name)
    out: list[ConfigProblem] = []
    for (key, message), names in found.items():
        parts = tuple(key.split("."))
        spelled = (_AT_TOP.get(key, parts), ("base", *parts))  # where the campaign may give it
        at = next((p for p in spelled if document.has(p)), ("experiments",))
        shown = format_path(at) if at != ("experiments",) else key
        where = _where(names, len(expansion.configs))
        out.append(
            ConfigProblem(document.file, document.line_of(at), shown, f"{message}: {MISSING_FIX} [{where}]")
        )
    return out


_AT_TOP: dict[str, tuple[str, ...]] = {"model_name": ("model",)}  # the campaign's spelling of a key


def campaign_summary(campaign: CampaignConfig, expansion: Expansion) -> str:
    n, cycles = len(expansion.configs), campaign.execution.cycles
    return (
        f"campaign '{campaign.campaign_name}': {n} configuration(s) x {cycles} cycle(s) = {n * cycles} runs, "
        f"{campaign.execution.structure}"
    )


def load_notices(campaign: CampaignConfig, expansion: Expansion) -> list[ConfigWarning]:
    """What loading said: schema-version and older-spelling notices of the campaign and its files."""
    own = campaign.source.notices if campaign.source is not None else ()
    return [*own, *expansion.notices]


def campaign_warnings(campaign: CampaignConfig, expansion: Expansion) -> list[ConfigWarning]:
    """Campaign advice, duplicates, per-configuration advice (grouped) and batch-limit advice."""
    return [
        *validate_config(campaign),
        *override_warnings(campaign, expansion.entry_documents),
        *_duplicate_warnings(expansion),
        *_grouped_config_warnings(campaign, expansion),
        *_batch_limit_warnings(campaign, expansion),
    ]


def experiment_warnings(campaign: CampaignConfig, expansion: Expansion) -> list[ConfigWarning]:
    """Advice for one experiment run as a campaign (``lem.campaign.single``): its configuration's.

    The wrapper's one cycle and zero gaps are the documented defaults of a single
    experiment, not the user's choice, so the campaign advice about them is left out.
    """
    return list(_grouped_config_warnings(campaign, expansion))


def _duplicate_warnings(expansion: Expansion) -> Iterator[ConfigWarning]:
    for dup in expansion.duplicates:
        values = ", ".join(f"{k}={v}" for k, v in dup.axis_values.items())
        yield ConfigWarning(
            param=dup.name,
            message=f"configuration {dup.name} ({values}) is identical to {dup.same_as}; it runs once",
            severity="warning",
            code="DUPLICATE_CONFIG",
        )


def _grouped_config_warnings(campaign: CampaignConfig, expansion: Expansion) -> Iterator[ConfigWarning]:
    groups: dict[ConfigWarning, list[str]] = {}
    for expanded in expansion.configs:
        for warning in validate_config(expanded.config):
            groups.setdefault(warning, []).append(expanded.name)
    total = len(expansion.configs)
    for warning, names in groups.items():
        yield ConfigWarning(
            warning.param, f"{warning.message} [{_where(names, total)}]", warning.severity, warning.code
        )


def _where(names: list[str], total: int) -> str:
    if len(names) == 1:
        return f"in {names[0]}"
    if len(names) == total:
        return f"in all {total} configurations"
    more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
    return f"in {len(names)} configurations: {', '.join(names[:_NAMES_SHOWN])}{more}"


def _batch_limit_warnings(campaign: CampaignConfig, expansion: Expansion) -> Iterator[ConfigWarning]:
    """vLLM/TensorRT concurrency caps below the sizes of a ``pytorch.batch_size`` axis."""
    axes = campaign.grid.axes if campaign.grid is not None else {}
    sizes = [v for v in axes.get("pytorch.batch_size", []) if isinstance(v, int)]
    if not sizes or "batch_size" in axes:
        return
    largest = max(sizes)
    for expanded in expansion.configs:
        cfg = expanded.config
        if cfg.backend == "vllm":
            cap, param = cfg.backend_section().model_dump()["max_num_seqs"], "vllm.max_num_seqs"
        elif cfg.backend == "tensorrt":
            cap, param = cfg.backend_section().model_dump()["max_batch_size"], "tensorrt.max_batch_size"
        else:
            continue
        if cap < largest:
            yield ConfigWarning(
                param,
                f"{param} ({cap}) in {expanded.name} is below the pytorch.batch_size axis values "
                f"(up to {largest}): that backend never runs as many sequences at once, so the comparison "
                "is not like for like; use the batch_size axis (it sets all three) or raise the limit",
                "warning",
                "BATCH_LIMIT_BELOW_AXIS",
            )

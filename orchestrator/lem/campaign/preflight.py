"""Preflight: everything a campaign needs, checked before its first run, every problem at once.

In order, each check collecting its findings rather than stopping at the first:

1. the runtime answers, and every image the plan uses is present with a matching contract label;
2. every run's container can be built: local model and dataset paths exist and lie under a
   mounted root, the requested GPU indices exist on this host (mapped to their UUIDs);
3. the results directory is writable and its file system has room for the runs left to do
   (``run_disk_bytes`` per run, a generous bound: the result, the logs and the power timeline
   at its sample rate for the whole ``execution.timeout_seconds``);
4. inside each image (or the local harness), ``python -m lem_harness probe`` finds the
   backend's Python packages, ``package:`` models, and — when ``HF_HUB_OFFLINE`` is set for the
   runs — hub models and datasets in the mounted Hugging Face cache (``lem_harness.probe``);
5. GPUs other processes are computing on now are a warning: their energy would be counted.

Errors stop the campaign before anything runs (``PreflightFailed``, exit 1); warnings are
shown and the campaign goes on. ``--skip-preflight`` skips all of it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from lem.campaign.expand import ExpandedConfig
from lem.campaign.plan import PlannedRun
from lem.campaign.specs import CampaignSpecs
from lem.runtime.errors import LemRuntimeError, RuntimeUnavailable
from lem.runtime.spec import ContainerSpec, Runtime
from lem_harness.experiment import ExperimentConfig
from lem_harness.probe import PROBLEMS, ProbeNeed

Severity = Literal["error", "warning"]
RUN_BASE_BYTES = 1 << 20  # result.json, spec.json, container.log
TIMELINE_ROW_BYTES = 128  # one row of timeline.csv per GPU per sample, generously
PROBE_COMMAND = ("probe", "--needs")


@dataclass(frozen=True)
class Finding:
    severity: Severity
    subject: str
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f"\n    → {self.fix}" if self.fix else ""
        return f"  ✘ {self.subject}: {self.message}{fix}"


class PreflightFailed(Exception):
    """The campaign cannot run here; ``findings`` lists every reason with its fix."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        errors = [f for f in findings if f.severity == "error"]
        lines = "\n".join(f.line() for f in errors)
        super().__init__(
            f"preflight found {len(errors)} problem(s); nothing was run:\n{lines}\n"
            "(fix them and run again; experts: --skip-preflight)"
        )


@dataclass(frozen=True)
class PreflightInput:
    """What preflight looks at (all decided before any run)."""

    runtime: Runtime
    images: Mapping[str, str]  # backend -> image
    runs: Sequence[PlannedRun]  # the runs left to do
    configs: Mapping[str, ExpandedConfig]
    specs: CampaignSpecs
    campaign_dir: Path
    timeout_s: float


@dataclass(frozen=True)
class HostProbes:
    """Side effects preflight needs of the host (tests replace them)."""

    gpu_processes: Callable[[Collection[str]], dict[str, int]]
    disk_free: Callable[[Path], int] = lambda path: shutil.disk_usage(path).free
    writable: Callable[[Path], bool] = lambda path: os.access(path, os.W_OK | os.X_OK)


def preflight(given: PreflightInput, host: HostProbes) -> list[Finding]:
    """Every finding; raises ``PreflightFailed`` when any is an error."""
    findings, usable = image_findings(given.runtime, given.images)
    spec_problems, first_specs = spec_findings(given)
    findings += spec_problems
    findings += disk_findings(given, host)
    probed = {backend: spec for backend, spec in first_specs.items() if backend in usable}
    findings += probe_findings(given.runtime, probed, needs_by_backend(given))
    findings += gpu_findings(given.specs.gpu_uuids(given.configs), host.gpu_processes)
    if any(f.severity == "error" for f in findings):
        raise PreflightFailed(findings)
    return findings


# --------------------------------------------------------------------------- 1. runtime and images


def image_findings(runtime: Runtime, images: Mapping[str, str]) -> tuple[list[Finding], set[str]]:
    """Problems of the runtime and of each image, and the backends whose image can be asked more."""
    findings: list[Finding] = []
    usable: set[str] = set()
    for backend, image in sorted(images.items()):
        try:
            runtime.check([image])
        except RuntimeUnavailable as e:
            return [Finding("error", f"{runtime.name} runtime", e.message, e.hint)], set()
        except LemRuntimeError as e:
            findings.append(Finding("error", f"image for {backend}", e.message, e.hint))
            continue
        usable.add(backend)
    return findings, usable


# --------------------------------------------------------------------------- 2. container specs


def spec_findings(given: PreflightInput) -> tuple[list[Finding], dict[str, ContainerSpec]]:
    """Build every run's container spec: each problem said once, naming the configurations it
    affects; the first good spec per backend (for the probe)."""
    errors: dict[str, tuple[LemRuntimeError, list[str]]] = {}
    first: dict[str, ContainerSpec] = {}
    for run in given.runs:
        try:
            spec = given.specs.container_spec(
                run, given.configs[run.config_id], given.campaign_dir / run.run_id
            )
        except LemRuntimeError as e:
            names = errors.setdefault(str(e), (e, []))[1]
            if run.name not in names:
                names.append(run.name)
            continue
        first.setdefault(run.backend, spec)
    findings = [Finding("error", ", ".join(names), e.message, e.hint) for e, names in errors.values()]
    return findings, first


# --------------------------------------------------------------------------- 3. results directory


def run_disk_bytes(config: ExperimentConfig, timeout_s: float) -> int:
    """A generous bound on one run's files: the fixed part + a full-length power timeline."""
    timeline = 0
    if config.timeseries.enabled:
        samples = config.timeseries.sample_rate_hz * timeout_s * max(1, len(config.gpus))
        timeline = int(samples * TIMELINE_ROW_BYTES)
    return RUN_BASE_BYTES + timeline


def nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def disk_findings(given: PreflightInput, host: HostProbes) -> list[Finding]:
    where = nearest_existing(given.campaign_dir)
    if not where.is_dir() or not host.writable(where):
        return [
            Finding(
                "error",
                "results directory",
                f"{where} is not a writable directory (results go to {given.campaign_dir})",
                "choose another place with --results-dir, or fix its permissions",
            )
        ]
    need = sum(run_disk_bytes(given.configs[r.config_id].config, given.timeout_s) for r in given.runs)
    free = host.disk_free(where)
    if free < need:
        return [
            Finding(
                "error",
                "results directory",
                f"{_mb(free)} free on {where}, the {len(given.runs)} runs left may write up to {_mb(need)}",
                "free some space or choose another place with --results-dir",
            )
        ]
    return []


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


# --------------------------------------------------------------------------- 4. inside the runtime


def needs_by_backend(given: PreflightInput) -> dict[str, list[ProbeNeed]]:
    """The distinct (backend, model, prompt source) of the runs left, per backend (local paths: host's)."""
    needs: dict[str, dict[str, ProbeNeed]] = {}
    for run in given.runs:
        cfg = given.configs[run.config_id].config
        need = ProbeNeed(backend=cfg.backend, model=cfg.model_name, source=cfg.prompt_source)
        needs.setdefault(cfg.backend, {}).setdefault(need.model_dump_json(), need)
    return {backend: list(found.values()) for backend, found in needs.items()}


def probe_findings(
    runtime: Runtime, specs: Mapping[str, ContainerSpec], needs: Mapping[str, Sequence[ProbeNeed]]
) -> list[Finding]:
    findings: list[Finding] = []
    for backend, spec in sorted(specs.items()):
        where = f"in {spec.image}" if runtime.name == "docker" else f"in the {runtime.name} harness"
        payload = json.dumps([n.model_dump(mode="json") for n in needs.get(backend, [])])
        try:
            answer = runtime.query(spec.for_query((*PROBE_COMMAND, payload)))
            problems = PROBLEMS.validate_json(answer.strip().splitlines()[-1] if answer.strip() else "[]")
        except LemRuntimeError as e:
            findings.append(Finding("error", f"{backend} {where}", e.message, e.hint))
            continue
        except ValidationError as e:
            findings.append(
                Finding("error", f"{backend} {where}", f"unreadable probe answer: {e}", "rebuild the image")
            )
            continue
        findings.extend(Finding("error", f"{p.subject} {where}", p.message, p.fix) for p in problems)
    return findings


# --------------------------------------------------------------------------- 5. GPUs in use


def gpu_findings(
    uuids: Iterable[str], processes: Callable[[Collection[str]], dict[str, int]]
) -> list[Finding]:
    wanted = list(uuids)
    busy = processes(wanted) if wanted else {}
    return [
        Finding(
            "warning",
            f"GPU {uuid}",
            f"{count} other process(es) are computing on it: their energy would be counted in the runs",
            "wait for them to finish, or choose other gpus",
        )
        for uuid, count in busy.items()
        if count > 0
    ]

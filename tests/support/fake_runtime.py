"""A ``Runtime`` that runs nothing: it plays a script per run and writes the result a harness would.

Used by the campaign unit tests and the bookkeeping benchmark. Each call reads the run's
``spec.json`` from the run directory mounted in the ``ContainerSpec`` (as the harness would),
advances the fake clock by the scripted duration, writes ``result.json`` (ok, failed, invalid
or none) and returns the scripted ``RunOutcome``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lem.runtime.errors import ImageMissing
from lem.runtime.orphans import OrphanPolicy
from lem.runtime.spec import ContainerSpec, OutcomeStatus, RunOutcome
from lem_harness.contract import (
    RESULT_FILE,
    SPEC_FILE,
    BaselineMetrics,
    EnergyMetrics,
    ErrorInfo,
    InferenceMetrics,
    RunResult,
    RunSpec,
)

ResultKind = Literal["ok", "failed", "invalid", "none"]


@dataclass(frozen=True)
class Play:
    """What one run does: how long it takes, what it writes, what the runtime answers."""

    outcome: OutcomeStatus = "ok"
    result: ResultKind = "ok"
    duration_s: float = 10.0
    exit_code: int | None = 0
    message: str = ""
    joules_per_token: float = 0.5
    tokens_per_s: float = 100.0


FAIL = Play(outcome="failed", result="failed", exit_code=1, message="harness exited 1")


@dataclass
class FakeRuntime:
    """Plays ``script[run_id]`` (one ``Play`` per attempt, the last repeating), else ``default``."""

    clock: Callable[[float], None] | None = None  # advances a fake clock by the run's duration
    script: dict[str, Sequence[Play]] = field(default_factory=dict)
    default: Play = field(default_factory=Play)
    missing_images: Collection[str] = ()
    during_run: Callable[[ContainerSpec, threading.Event], None] | None = None
    name: str = "fake"
    calls: list[ContainerSpec] = field(default_factory=list)
    started: Counter[str] = field(default_factory=Counter)
    checked: list[list[str]] = field(default_factory=list)
    cleaned: list[list[str]] = field(default_factory=list)
    probe_answer: str = "[]"  # what `lem_harness probe` says (JSON list of problems)
    queries: list[ContainerSpec] = field(default_factory=list)
    abandoned: int = 0

    def check(self, images: Sequence[str]) -> None:
        self.checked.append(list(images))
        for image in images:
            if image in self.missing_images:
                raise ImageMissing(image, image.split("/")[-1].split(":")[0])

    def cleanup_orphans(self, policy: OrphanPolicy) -> list[str]:
        self.cleaned.append(sorted(policy.spare_campaigns))
        return []

    def query(self, spec: ContainerSpec, timeout_s: float = 120.0) -> str:
        self.queries.append(spec)
        return self.probe_answer

    def abandon(self) -> None:
        self.abandoned += 1

    def attempts(self, run_id: str) -> int:
        return self.started[run_id]

    def run(self, spec: ContainerSpec, stop: threading.Event) -> RunOutcome:
        self.calls.append(spec)
        self.started[spec.run_id] += 1
        plays = self.script.get(spec.run_id, [self.default])
        play = plays[min(self.started[spec.run_id] - 1, len(plays) - 1)]
        if self.during_run is not None:
            self.during_run(spec, stop)
        if self.clock is not None:
            self.clock(play.duration_s)
        if stop.is_set():
            return RunOutcome("interrupted", None, play.duration_s, [], "stopped by request")
        run_dir = Path(spec.run_dir() or "")
        write_result(run_dir, play)
        return RunOutcome(play.outcome, play.exit_code, play.duration_s, ["line 1", "line 2"], play.message)


def write_result(run_dir: Path, play: Play) -> None:
    """The ``result.json`` a harness would leave for ``play`` (plain write: speed over safety)."""
    if play.result == "none":
        return
    if play.result == "invalid":
        (run_dir / RESULT_FILE).write_text('{"status": "ok"}', encoding="utf-8")
        return
    spec = RunSpec.model_validate_json((run_dir / SPEC_FILE).read_text(encoding="utf-8"))
    (run_dir / RESULT_FILE).write_text(fake_result(spec, play).model_dump_json(), encoding="utf-8")


def fake_result(spec: RunSpec, play: Play) -> RunResult:
    """A result with known figures: 1,000 output tokens at ``tokens_per_s`` and ``joules_per_token``."""
    ok = play.result == "ok"
    tokens = 1_000
    duration = tokens / play.tokens_per_s
    energy = tokens * play.joules_per_token
    return RunResult(
        run_id=spec.run_id,
        campaign_id=spec.campaign_id,
        config_id=spec.config_id,
        config_name=spec.config_name,
        cycle=spec.cycle,
        backend=spec.config.backend,
        status="ok" if ok else "failed",
        error=None if ok else ErrorInfo(type="RuntimeError", message="engine crashed"),
        started_at="2025-01-01T00:00:00+00:00",
        finished_at="2025-01-01T00:00:10+00:00",
        config=spec.config,
        metrics=_metrics(tokens, duration) if ok else None,
        energy=EnergyMetrics(
            energy_source="simulated",
            gross_energy_j=energy,
            window_duration_s=duration,
            energy_per_output_token_j=play.joules_per_token,
            avg_power_w=energy / duration,
        )
        if ok
        else None,
        baseline=BaselineMetrics(idle_power_w=60.0, duration_s=30.0, samples=150),
    )


def _metrics(tokens: int, duration: float) -> InferenceMetrics:
    return InferenceMetrics(
        num_prompts=10,
        num_batches=10,
        input_tokens=500,
        output_tokens=tokens,
        duration_s=duration,
        output_tokens_per_s=tokens / duration,
        total_tokens_per_s=(tokens + 500) / duration,
        batch_latency_p50_s=duration / 10,
        batch_latency_p90_s=duration / 10,
        batch_latency_p99_s=duration / 10,
    )

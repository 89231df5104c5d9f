"""Runs a campaign's plan: gap, fresh container, result, manifest — run after run.

For each run still to do (everything not ``done`` in the manifest, in plan order): wait the
gap before it, drop the page cache where asked and permitted, mark it ``running``, write its
``spec.json``, hand its ``ContainerSpec`` to the runtime, judge the outcome with the
``result.json`` it left, and save the manifest. A failed run is retried only when
``execution.retries`` asks and stops the campaign only with ``fail_fast`` or when the circuit
breaker trips: ``execution.max_consecutive_failures`` runs in a row failed with the same error
class (the harness's exception type, or the runtime's outcome), so that a cause every run
shares (a missing package, a wrong path) is said once instead of being met by every run left.
A stop request (Ctrl-C) kills the running container, marks the run ``interrupted`` and ends
the campaign.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lem.campaign.clock import Clock
from lem.campaign.coldstart import PageCacheDropper
from lem.campaign.expand import ExpandedConfig
from lem.campaign.files import replace_text
from lem.campaign.gaps import GapRecord, GapWaiter
from lem.campaign.manifest import Manifest, RunEntry, iso_utc
from lem.campaign.plan import PlannedRun
from lem.campaign.progress import ProgressSink
from lem.campaign.verdict import Verdict, judge
from lem.config.campaign import CampaignConfig
from lem.runtime.errors import LemRuntimeError
from lem.runtime.spec import ContainerSpec, Runtime
from lem_harness.contract import RESULT_FILE, SPEC_FILE, RunSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class SpecFactory(Protocol):
    """Builds a run's ``RunSpec`` (spec.json) and its ``ContainerSpec`` (pure)."""

    def run_spec(self, run: PlannedRun, config: ExpandedConfig) -> RunSpec: ...

    def container_spec(self, run: PlannedRun, config: ExpandedConfig, run_dir: Path) -> ContainerSpec: ...


@dataclass(frozen=True)
class CampaignPlan:
    """What to run: the campaign, its configurations by id, its ordered runs, where results go."""

    campaign: CampaignConfig
    campaign_id: str
    configs: Mapping[str, ExpandedConfig]
    runs: Sequence[PlannedRun]
    campaign_dir: Path

    def run_dir(self, run: PlannedRun) -> Path:
        return self.campaign_dir / run.run_id


@dataclass
class Services:
    """The executor's side effects, each behind a protocol so tests can fake it."""

    runtime: Runtime
    specs: SpecFactory
    clock: Clock
    stop: threading.Event
    gaps: GapWaiter
    progress: ProgressSink
    page_cache: PageCacheDropper


@dataclass
class CampaignReport:
    total: int
    done: int
    failed: int
    interrupted: int
    pending: int
    stopped: bool  # a stop request (Ctrl-C, SIGTERM) ended the campaign
    aborted: str | None = None  # why the campaign could not go on (runtime lost, --fail-fast)
    ran: list[str] = field(default_factory=list)  # run ids attempted in this session
    problems: list[tuple[str, str]] = field(default_factory=list)  # (run id, message) not done

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return EXIT_INTERRUPTED
        if self.failed or self.aborted:
            return EXIT_FAILED
        return EXIT_OK


class CampaignAborted(Exception):
    """The runtime failed in a way every following run would share (daemon gone, image removed)."""


class FailureStreak:
    """Counts runs that failed in a row with the same error class; any other outcome resets it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: never trips
        self.error_type: str | None = None
        self.count = 0

    def observe(self, entry: RunEntry) -> bool:
        """Record a finished run; True when the streak has reached the limit."""
        if entry.status != "failed":
            self.error_type, self.count = None, 0
            return False
        kind = entry.error_type or entry.outcome or "failed"
        self.count = self.count + 1 if kind == self.error_type else 1
        self.error_type = kind
        return self.limit > 0 and self.count >= self.limit

    def reason(self) -> str:
        return (
            f"{self.count} runs in a row failed with {self.error_type} "
            f"(execution.max_consecutive_failures: {self.limit}); fix the cause, then resume"
        )


class CampaignExecutor:
    def __init__(
        self,
        plan: CampaignPlan,
        manifest: Manifest,
        services: Services,
        fail_fast: bool = False,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.plan = plan
        self.skip = skip
        self.manifest = manifest
        self.s = services
        self.fail_fast = fail_fast
        self._ran: list[str] = []
        self._streak = FailureStreak(plan.campaign.execution.max_consecutive_failures)

    def todo(self) -> list[PlannedRun]:
        """Runs not yet done nor skipped, in plan order (a done run is never repeated)."""
        return [
            r
            for r in self.plan.runs
            if self.manifest.entry(r.run_id).status != "done" and r.run_id not in self.skip
        ]

    def run(self) -> CampaignReport:
        todo = self.todo()
        self.s.progress.campaign_started(len(self.plan.runs), len(self.plan.runs) - len(todo), todo)
        aborted: str | None = None
        try:
            aborted = self._run_all(todo)
        except CampaignAborted as e:
            aborted = str(e)
        finally:
            self.manifest.close()
            self.s.gaps.close()
            self.s.progress.campaign_finished()
        return self._report(aborted)

    # ------------------------------------------------------------------ the loop

    def _run_all(self, todo: Sequence[PlannedRun]) -> str | None:
        for run in todo:
            if self.s.stop.is_set():
                return None
            entry = self._run_with_retries(run)
            if entry is None or self.s.stop.is_set():
                return None
            if entry.status == "failed" and self.fail_fast:
                return f"--fail-fast: {run.run_id} failed"
            if self._streak.observe(entry):
                return self._streak.reason()
        return None

    def _run_with_retries(self, run: PlannedRun) -> RunEntry | None:
        """Gap, then the run, then retries while ``execution.retries`` allows; None if stopped in a gap."""
        gap_s = run.gap_before_s
        for attempt in range(1, self.plan.campaign.execution.retries + 2):
            if gap_s > 0:
                self.s.progress.gap_started(run, gap_s, self.s.gaps.status_line)
            gap = self.s.gaps.wait(gap_s)
            if self.s.stop.is_set():
                return None
            entry = self._attempt(run, attempt, gap)
            if entry.status != "failed":
                return entry
            gap_s = self.plan.campaign.execution.config_gap_seconds
        return entry

    def _attempt(self, run: PlannedRun, attempt: int, gap: GapRecord) -> RunEntry:
        run_dir = self.plan.run_dir(run)
        expanded = self.plan.configs[run.config_id]
        dropped = self.s.page_cache.drop()
        self._prepare_run_dir(run, expanded, run_dir)
        container = self.s.specs.container_spec(run, expanded, run_dir)
        started = self.s.clock.monotonic()
        self._save(
            run.run_id,
            status="running",
            attempts=self.manifest.entry(run.run_id).attempts + 1,
            outcome=None,
            message=None,
            started_at=iso_utc(self.s.clock.time()),
            finished_at=None,
            duration_s=None,
            gap_waited_s=gap.waited_s,
            gap_ended_by=gap.ended_by,
            start_temperature_c=gap.start_temperature_c,
            page_cache_dropped=dropped,
            result_path=None,
            error_type=None,
            log_path=_relative(container.log_path, self.plan.campaign_dir),
            result_sha256=None,
        )
        self._ran.append(run.run_id)
        self.s.progress.run_started(run, attempt, run_dir)
        verdict = self._execute(run, container, run_dir)
        entry = self._save(
            run.run_id,
            status=verdict.status,
            outcome=verdict.outcome,
            message=verdict.message or None,
            error_type=verdict.error_type,
            finished_at=iso_utc(self.s.clock.time()),
            duration_s=self.s.clock.monotonic() - started,
            result_path=f"{run.run_id}/{RESULT_FILE}" if verdict.result is not None else None,
            result_sha256=verdict.result_sha256 if verdict.result is not None else None,
        )
        if verdict.result is not None:
            self.s.gaps.observe_baseline(verdict.result.baseline)
        self.s.progress.run_finished(run, entry, verdict.result)
        return entry

    def _execute(self, run: PlannedRun, container: ContainerSpec, run_dir: Path) -> Verdict:
        try:
            outcome = self.s.runtime.run(container, self.s.stop)
        except LemRuntimeError as e:
            self._save(
                run.run_id,
                status="failed",
                outcome="runtime_error",
                message=str(e),
                error_type=type(e).__name__,
                finished_at=iso_utc(self.s.clock.time()),
            )
            raise CampaignAborted(f"{run.run_id}: {e}") from e
        return judge(outcome, run_dir, run.run_id)

    def _prepare_run_dir(self, run: PlannedRun, expanded: ExpandedConfig, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RESULT_FILE).unlink(missing_ok=True)  # never judge a run by an older attempt's result
        spec = self.s.specs.run_spec(run, expanded)
        replace_text(run_dir / SPEC_FILE, spec.model_dump_json(indent=2) + "\n")

    def _save(self, run_id: str, **changes: object) -> RunEntry:
        entry = self.manifest.update(run_id, **changes)
        self.manifest.save(self.s.clock.time())
        return entry

    def _report(self, aborted: str | None) -> CampaignReport:
        m = self.manifest
        return CampaignReport(
            total=len(self.plan.runs),
            done=m.count("done"),
            failed=m.count("failed"),
            interrupted=m.count("interrupted", "running"),
            pending=m.count("pending"),
            stopped=self.s.stop.is_set(),
            aborted=aborted,
            ran=list(self._ran),
            problems=[
                (e.run_id, f"{e.status}: {e.message or e.outcome}")
                for e in m.entries()
                if e.status in ("failed", "interrupted")
            ],
        )


def _relative(path: str | None, root: Path) -> str | None:
    """``path`` relative to ``root`` when it lies inside it, else as given."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path

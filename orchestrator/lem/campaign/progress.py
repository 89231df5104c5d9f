"""What a person sees while a campaign runs: run k of N, configuration, cycle, elapsed time, an ETA
that counts the gaps still to wait, and the last result's J/token and tok/s.

``RichProgress`` draws a live bar on a terminal, and under it what the running run is doing now:
its phase (idle baseline, loading, warmup with its CV, measuring with tokens so far, writing)
with the GPU power and temperature, read from the run's ``status.json`` at each refresh
(``lem.campaign.live``); during a thermal gap, each GPU's temperature against its target.
``LogProgress`` writes one plain line per event, no control codes (``--quiet``, or when the
output is not a terminal). Both are fed by the executor through the ``ProgressSink`` protocol.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from lem.campaign.clock import Clock
from lem.campaign.live import describe, format_duration, read_status
from lem.campaign.manifest import RunEntry
from lem.campaign.plan import PlannedRun
from lem.campaign.verdict import first_line
from lem_harness.contract import RunResult

GapStatus = Callable[[], "str | None"]  # the gap's live state (thermal: temperature vs target)


def _no_status() -> str | None:
    return None


class ProgressSink(Protocol):
    def campaign_started(self, total: int, already_done: int, todo: Sequence[PlannedRun]) -> None: ...

    def gap_started(self, run: PlannedRun, seconds: float, status: GapStatus = _no_status) -> None: ...

    def run_started(self, run: PlannedRun, attempt: int, run_dir: Path | None = None) -> None: ...

    def run_finished(self, run: PlannedRun, entry: RunEntry, result: RunResult | None) -> None: ...

    def note(self, text: str) -> None: ...

    def campaign_finished(self) -> None: ...


class EtaEstimator:
    """Remaining time = each remaining run's expected duration + its configured gap.

    A run is expected to last as long as the mean of its configuration's finished runs in this
    session, else the mean of all finished runs; with nothing finished yet there is no ETA.
    Every update is O(1), so a 1,000-run campaign does not pay O(runs²) for its display.
    """

    def __init__(self, todo: Sequence[PlannedRun]) -> None:
        self._gap = {r.run_id: r.gap_before_s for r in todo}
        self._config_of = {r.run_id: r.config_id for r in todo}
        self._left = Counter(self._config_of.values())
        self._gaps_left = sum(self._gap.values())
        self._stats: dict[str, tuple[float, int]] = {}
        self._total = (0.0, 0)
        self._known_s = 0.0  # sum over configurations with a mean: runs left x that mean
        self._unknown = len(self._config_of)  # runs left whose configuration has no mean yet

    def started(self, run: PlannedRun) -> None:
        """The run's gap is behind it: only its own duration remains."""
        self._gaps_left -= self._gap.pop(run.run_id, 0.0)

    def finished(self, run: PlannedRun, duration_s: float | None) -> None:
        self.started(run)
        config = self._config_of.pop(run.run_id, None)
        if config is not None:
            mean = self._mean(config)
            self._left[config] -= 1
            if mean is None:
                self._unknown -= 1
            else:
                self._known_s -= mean
        if duration_s is not None:
            self._learn(run.config_id, duration_s)

    def eta_s(self) -> float | None:
        total, count = self._total
        if count == 0:
            return None
        return max(0.0, self._known_s + self._unknown * (total / count) + self._gaps_left)

    def _mean(self, config_id: str) -> float | None:
        stats = self._stats.get(config_id)
        return stats[0] / stats[1] if stats else None

    def _learn(self, config_id: str, duration_s: float) -> None:
        old = self._mean(config_id)
        total, count = self._stats.get(config_id, (0.0, 0))
        self._stats[config_id] = (total + duration_s, count + 1)
        self._total = (self._total[0] + duration_s, self._total[1] + 1)
        new = duration_s if old is None else (total + duration_s) / (count + 1)
        left = self._left[config_id]
        if old is None:
            self._unknown -= left
            self._known_s += left * new
        else:
            self._known_s += left * (new - old)


def result_figures(result: RunResult | None) -> str:
    """``"0.0123 J/token, 45.6 tok/s"`` from a result, with ``?`` for what it lacks."""
    if result is None:
        return "no result"
    jpt = result.energy.energy_per_output_token_j if result.energy is not None else None
    tps = result.metrics.output_tokens_per_s if result.metrics is not None else None
    jpt_text = f"{jpt:.4g} J/token" if jpt is not None else "? J/token"
    tps_text = f"{tps:.4g} tok/s" if tps is not None else "? tok/s"
    return f"{jpt_text}, {tps_text}"


def failure_line(entry: RunEntry) -> str:
    """One line for a run that did not finish: its message once, and where its full log is."""
    text = first_line(entry.message or entry.outcome or entry.status)
    return f"{text} (log: {entry.log_path})" if entry.log_path else text


class _Counter:
    """Shared state of both displays: position k of N, elapsed, ETA."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.total = 0
        self.finished = 0
        self.start = clock.monotonic()
        self.eta = EtaEstimator([])

    def begin(self, total: int, already_done: int, todo: Sequence[PlannedRun]) -> None:
        self.total, self.finished = total, already_done
        self.start = self.clock.monotonic()
        self.eta = EtaEstimator(todo)

    def elapsed(self) -> str:
        return format_duration(self.clock.monotonic() - self.start)


class LogProgress:
    """One plain line per event (``--quiet`` and non-terminal output)."""

    def __init__(self, clock: Clock, write: Callable[[str], None]) -> None:
        self._c = _Counter(clock)
        self._write = write

    def campaign_started(self, total: int, already_done: int, todo: Sequence[PlannedRun]) -> None:
        self._c.begin(total, already_done, todo)
        self._write(f"campaign: {total} runs, {already_done} already done, {len(todo)} to run")

    def gap_started(self, run: PlannedRun, seconds: float, status: GapStatus = _no_status) -> None:
        self._write(f"gap: up to {seconds:g} s ({run.gap_kind}) before {run.run_id}")

    def run_started(self, run: PlannedRun, attempt: int, run_dir: Path | None = None) -> None:
        self._c.eta.started(run)
        tries = f", attempt {attempt}" if attempt > 1 else ""
        self._write(
            f"run {self._c.finished + 1}/{self._c.total}: {run.name} cycle {run.cycle}{tries} "
            f"[elapsed {self._c.elapsed()}]"
        )

    def run_finished(self, run: PlannedRun, entry: RunEntry, result: RunResult | None) -> None:
        if entry.status in ("done", "failed"):
            self._c.finished += 1
            self._c.eta.finished(run, entry.duration_s)
        detail = result_figures(result) if entry.status == "done" else failure_line(entry)
        self._write(
            f"{entry.status}: {run.run_id} in {format_duration(entry.duration_s)} — {detail} "
            f"[elapsed {self._c.elapsed()}, eta {format_duration(self._c.eta.eta_s())}]"
        )

    def note(self, text: str) -> None:
        self._write(text)

    def campaign_finished(self) -> None:
        self._write(f"campaign finished in {self._c.elapsed()}")


class RichProgress:
    """A live bar: run k/N, configuration and cycle, elapsed, ETA with gaps, last J/token and tok/s."""

    def __init__(
        self,
        clock: Clock,
        console: Console,
        wall: Callable[[], float] = time.time,
        refresh_per_second: float = 2,
    ) -> None:
        self._c = _Counter(clock)
        self._console = console
        self._wall = wall
        self._detail: Callable[[], str] = lambda: ""
        self._bar = _BarWithDetail(
            self._current_detail,
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            TextColumn("{task.fields[last]}"),
            console=console,
            refresh_per_second=refresh_per_second,
        )
        self._task: TaskID | None = None

    def campaign_started(self, total: int, already_done: int, todo: Sequence[PlannedRun]) -> None:
        self._c.begin(total, already_done, todo)
        self._bar.start()
        self._task = self._bar.add_task("starting", total=total, completed=already_done, eta="?", last="")

    def gap_started(self, run: PlannedRun, seconds: float, status: GapStatus = _no_status) -> None:
        self._update(description=f"{run.gap_kind} gap ≤ {seconds:g} s before {run.name} c{run.cycle}")
        started = self._c.clock.monotonic()

        def detail() -> str:
            waited = f"gap: waited {format_duration(self._c.clock.monotonic() - started)} of ≤ {seconds:g} s"
            now = status()
            return f"{waited} · {now}" if now else waited

        self._detail = detail

    def run_started(self, run: PlannedRun, attempt: int, run_dir: Path | None = None) -> None:
        self._c.eta.started(run)
        tries = f" (attempt {attempt})" if attempt > 1 else ""
        self._update(description=f"{run.name} cycle {run.cycle}{tries}")
        if run_dir is not None:
            self._detail = lambda: describe(read_status(run_dir), self._wall())

    def run_finished(self, run: PlannedRun, entry: RunEntry, result: RunResult | None) -> None:
        if entry.status in ("done", "failed"):
            self._c.finished += 1
            self._c.eta.finished(run, entry.duration_s)
        self._detail = lambda: ""
        last = result_figures(result) if entry.status == "done" else f"[red]{entry.status}: {run.run_id}"
        self._update(completed=self._c.finished, eta=format_duration(self._c.eta.eta_s()), last=last)
        if entry.status != "done":
            self._console.print(
                Text.assemble((entry.status, "red"), f": {run.run_id} — {failure_line(entry)}")
            )

    def note(self, text: str) -> None:
        self._console.print(Text(text))

    def _current_detail(self) -> str:
        return self._detail()

    def campaign_finished(self) -> None:
        self._bar.stop()

    def _update(
        self,
        *,
        description: str | None = None,
        completed: int | None = None,
        eta: str | None = None,
        last: str | None = None,
    ) -> None:
        if self._task is None:
            return
        self._bar.update(self._task, completed=completed, description=description)
        if eta is not None:
            self._bar.update(self._task, eta=eta)
        if last is not None:
            self._bar.update(self._task, last=last)


class _BarWithDetail(Progress):
    """The progress bar, then one line of what the running run (or gap) is doing now."""

    def __init__(self, detail: Callable[[], str], *columns: Any, **kwargs: Any) -> None:
        self._detail_text = detail
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        text = self._detail_text()
        if text:
            yield Text(f"  {text}", style="dim")

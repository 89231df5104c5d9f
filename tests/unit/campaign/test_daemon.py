"""The daemon loop with a fake clock, a scripted repetition runner and an in-memory store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from lem.campaign.clock import FakeClock
from lem.campaign.daemon import (
    MISSED,
    OVERRUN,
    DaemonScheduler,
    DaemonServices,
    RepetitionOutcome,
)
from lem.campaign.schedule import Schedule
from lem.campaign.schedule_state import ScheduleState, new_state
from lem.config.campaign import DaemonConfig

UTC = ZoneInfo("UTC")
EPOCH = 1_781_000_000.0  # 2026-06-09 10:13:20 UTC


@dataclass
class Runner:
    clock: FakeClock
    takes_s: float = 100.0
    outcomes: dict[int, list[RepetitionOutcome]] = field(default_factory=dict)
    calls: list[tuple[int, str, bool, float]] = field(default_factory=list)
    during: Callable[[int], None] | None = None

    def run(self, repetition: int, directory: str, resume: bool) -> RepetitionOutcome:
        self.calls.append((repetition, directory, resume, self.clock.time() - EPOCH))
        if self.during is not None:
            self.during(repetition)
        self.clock.advance(self.takes_s)
        script = self.outcomes.get(repetition)
        return script.pop(0) if script else RepetitionOutcome("done", 4, 4, 0)


@dataclass
class Display:
    tick_s: float | None = None
    lines: list[str] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)

    def event(self, text: str) -> None:
        self.lines.append(text)

    def waiting(self, repetition: int, due_local: str, seconds: float) -> None:
        self.lines.append(f"waiting {repetition} {due_local} {seconds:g}")

    def tick(self, remaining_s: float) -> None:
        self.ticks.append(remaining_s)

    def waited(self) -> None:
        self.lines.append("waited")


@dataclass
class Store:
    saved: list[dict[str, Any]] = field(default_factory=list)

    def save(self, state: ScheduleState, now: float) -> None:
        self.saved.append(state.model_dump())


class Rig:
    def __init__(self, **daemon: Any) -> None:
        self.clock = FakeClock(start=0.0, epoch=EPOCH)
        self.stop = threading.Event()
        self.runner = Runner(self.clock)
        self.display = Display()
        self.store = Store()
        self.schedule = Schedule(DaemonConfig(enabled=True, **daemon), UTC)
        self.state = new_state("demo", "hash", EPOCH, self.schedule.anchor(EPOCH), "UTC")

    def scheduler(self) -> DaemonScheduler:
        services = DaemonServices(self.clock, self.stop, self.runner, self.display, self.store)
        return DaemonScheduler(self.schedule, self.state, services)


def test_three_repetitions_every_interval_with_exact_waits() -> None:
    rig = Rig(interval="15m", repetitions=3)
    report = rig.scheduler().run()
    assert report.exit_code == 0 and report.phase == "finished"
    assert [(c[0], c[1], c[2], c[3]) for c in rig.runner.calls] == [
        (1, "rep-0001", False, 0.0),
        (2, "rep-0002", False, 900.0),
        (3, "rep-0003", False, 1800.0),
    ]
    # 900 s interval - 100 s repetition, in chunks of at most a minute (the wall clock is re-read)
    assert rig.clock.sleeps == ([60.0] * 13 + [20.0]) * 2
    assert [(r.repetition, r.slot, r.status, r.runs_done, r.late) for r in rig.state.repetitions] == [
        (1, 0, "done", 4, False),
        (2, 1, "done", 4, False),
        (3, 2, "done", 4, False),
    ]
    assert rig.state.finished_reason == "3 of 3 repetitions run"
    assert rig.state.repetitions[1].due_at == "2026-06-09T10:28:20.000+00:00"
    assert [line for line in rig.display.lines if line.startswith("waiting ")] == [
        "waiting 2 2026-06-09 10:28:20 UTC 800",  # the first starts at once: no wait shown
        "waiting 3 2026-06-09 10:43:20 UTC 800",
    ]
    assert rig.store.saved[-1]["phase"] == "finished"


def test_a_rich_display_ticks_every_second_while_waiting() -> None:
    rig = Rig(interval="10s", repetitions=2)
    rig.runner.takes_s = 5.0
    rig.display.tick_s = 1.0
    rig.scheduler().run()
    assert rig.clock.sleeps == [1.0] * 5
    assert rig.display.ticks == [4.0, 3.0, 2.0, 1.0, 0.0]


def test_ctrl_c_while_waiting_exits_130_and_keeps_the_schedule_for_resume() -> None:
    rig = Rig(interval="1h", repetitions=3)
    rig.clock.schedule(600.0, rig.stop.set)  # Ctrl-C 10 minutes into the wait
    report = rig.scheduler().run()
    assert report.exit_code == 130 and report.stopped and report.phase == "stopped"
    assert rig.clock.monotonic() == 600.0
    assert [r.status for r in rig.state.repetitions] == ["done"]
    assert rig.state.next_slot == 1 and rig.state.next_due_at == "2026-06-09T11:13:20.000+00:00"
    assert rig.display.lines[-1] == "waited"
    # a later --resume (same state, fresh process) waits for the same start
    rig.stop.clear()
    again = rig.scheduler().run()
    assert again.exit_code == 0
    assert [c[3] for c in rig.runner.calls] == [0.0, 3600.0, 7200.0]


def test_resume_continues_the_repetition_in_flight_then_keeps_the_schedule() -> None:
    rig = Rig(interval="1h", repetitions=3)
    rig.runner.outcomes[2] = [RepetitionOutcome("interrupted", 4, 1, 0)]
    first = rig.scheduler().run()
    assert first.exit_code == 130
    assert [(r.repetition, r.status, r.finished_at) for r in rig.state.repetitions] == [
        (1, "done", "2026-06-09T10:15:00.000+00:00"),
        (2, "interrupted", None),
    ]
    second = rig.scheduler().run()
    assert second.exit_code == 0 and second.ran == [2, 3]
    assert [(c[0], c[2]) for c in rig.runner.calls] == [(1, False), (2, False), (2, True), (3, False)]
    assert [r.status for r in rig.state.repetitions] == ["done"] * 3
    assert "continuing repetition 2 (rep-0002)" in rig.display.lines


def test_an_aborted_repetition_exits_1_and_is_continued_by_resume() -> None:
    rig = Rig(interval="1h", repetitions=2)
    rig.runner.outcomes[1] = [RepetitionOutcome("aborted", 4, 0, 0, "the docker daemon is gone")]
    report = rig.scheduler().run()
    assert (report.exit_code, report.phase, report.aborted) == (
        1,
        "aborted",
        "repetition 1: the docker daemon is gone",
    )
    assert rig.scheduler().run().exit_code == 0
    assert [(c[0], c[2]) for c in rig.runner.calls] == [(1, False), (1, True), (2, False)]


def test_a_failed_repetition_is_recorded_and_the_schedule_goes_on() -> None:
    rig = Rig(interval="1h", repetitions=2)
    rig.runner.outcomes[1] = [RepetitionOutcome("failed", 4, 3, 1)]
    report = rig.scheduler().run()
    assert report.exit_code == 0
    assert [(r.status, r.runs_failed) for r in rig.state.repetitions] == [("failed", 1), ("done", 0)]


def test_overrun_queue_starts_the_next_at_once_and_records_what_it_skipped() -> None:
    rig = Rig(interval="1h", repetitions=3, on_overrun="queue")
    rig.runner.takes_s = 2.5 * 3600
    rig.scheduler().run()
    assert [c[3] for c in rig.runner.calls] == [0.0, 9000.0, 18000.0]
    assert [(r.slot, r.late) for r in rig.state.repetitions] == [(0, False), (1, True), (3, True)]
    assert [(s.first_slot, s.last_slot, s.count, s.reason) for s in rig.state.skipped] == [
        (2, 2, 1, OVERRUN),
        (4, 4, 1, OVERRUN),
    ]
    assert rig.clock.sleeps == []


def test_overrun_skip_waits_for_the_next_start() -> None:
    rig = Rig(interval="1h", repetitions=2, on_overrun="skip")
    rig.runner.takes_s = 2.5 * 3600
    report = rig.scheduler().run()
    assert [c[3] for c in rig.runner.calls] == [0.0, 3 * 3600.0]
    assert [(s.first_slot, s.last_slot, s.count) for s in rig.state.skipped] == [(1, 2, 2)]
    assert report.skipped == 2
    assert rig.clock.sleeps == [60.0] * 30


def test_starts_missed_while_lem_was_not_running_follow_the_overrun_policy() -> None:
    rig = Rig(interval="1h", repetitions=3, on_overrun="skip")
    rig.runner.during = lambda n: rig.stop.set() if n == 1 else None
    rig.runner.outcomes[1] = [RepetitionOutcome("done", 4, 4, 0)]
    rig.scheduler().run()  # stops after repetition 1 (the stop request is seen before the next wait)
    rig.stop.clear()
    rig.clock.advance(3 * 3600)  # the machine was off for 3 hours
    rig.scheduler().run()
    assert [(s.first_slot, s.last_slot, s.reason) for s in rig.state.skipped] == [(1, 3, MISSED)]
    assert [r.slot for r in rig.state.repetitions] == [0, 4, 5]

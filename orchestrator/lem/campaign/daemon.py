"""Runs a daemon campaign: repetition after repetition on the schedule, surviving restarts.

The loop: continue the repetition in flight (after a crash, a reboot or a stop), then ask the
``Schedule`` what is next — start a slot now, wait for one, or stop — record skipped slots,
wait (showing the next start and a countdown; a stop request ends the wait and the daemon
with 130), run the repetition through the ``RepetitionRunner`` and record its outcome.
``schedule.json`` is saved before and after every step, so a process killed at any moment
resumes where it was. Side effects sit behind protocols in ``DaemonServices`` (the clock, the
stop event, the repetition runner, the display, the store), as in ``executor``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from lem.campaign.clock import Clock
from lem.campaign.executor import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from lem.campaign.manifest import iso_utc
from lem.campaign.schedule import Decision, Schedule, Skipped, Slot
from lem.campaign.schedule_state import (
    DaemonPhase,
    RepetitionRecord,
    ScheduleState,
    SkipRecord,
    repetition_dir,
)

OutcomeStatus = Literal["done", "failed", "interrupted", "aborted"]
MAX_WAIT_CHUNK_S = 60.0  # re-read the wall clock at least this often (suspend, NTP steps)
MISSED = "missed: lem was not running at its start time"
OVERRUN = "overrun: the previous repetition was still running at its start time"


@dataclass(frozen=True)
class RepetitionOutcome:
    status: OutcomeStatus
    total: int = 0
    done: int = 0
    failed: int = 0
    message: str | None = None


class RepetitionRunner(Protocol):
    def run(self, repetition: int, directory: str, resume: bool) -> RepetitionOutcome:
        """Run (or, with ``resume``, continue) one whole campaign pass in ``directory``."""
        ...


class StateStore(Protocol):
    def save(self, state: ScheduleState, now: float) -> None: ...


class ScheduleDisplay(Protocol):
    @property
    def tick_s(self) -> float | None:
        """How often ``tick`` wants to be called while waiting (None: never)."""
        ...

    def event(self, text: str) -> None: ...

    def waiting(self, repetition: int, due_local: str, seconds: float) -> None: ...

    def tick(self, remaining_s: float) -> None: ...

    def waited(self) -> None: ...


@dataclass
class DaemonServices:
    clock: Clock
    stop: threading.Event
    repetitions: RepetitionRunner
    display: ScheduleDisplay
    store: StateStore


@dataclass
class DaemonReport:
    repetitions: list[RepetitionRecord]
    skipped: int
    phase: str
    stopped: bool = False
    aborted: str | None = None
    ran: list[int] = field(default_factory=list)  # repetitions run (or continued) by this process

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return EXIT_INTERRUPTED
        if self.aborted:
            return EXIT_FAILED
        return EXIT_OK


class _Stop(Exception):
    def __init__(self, aborted: str | None = None) -> None:
        super().__init__(aborted or "stopped")
        self.aborted = aborted


class DaemonScheduler:
    def __init__(self, schedule: Schedule, state: ScheduleState, services: DaemonServices) -> None:
        self.schedule = schedule
        self.state = state
        self.s = services
        self._ran: list[int] = []
        self._reason = MISSED  # why a slot passed: until a repetition ends here, lem was not running

    def run(self) -> DaemonReport:
        try:
            in_flight = self.state.in_flight()
            if in_flight is not None:
                self.s.display.event(f"continuing repetition {in_flight.repetition} ({in_flight.directory})")
                self._run_repetition(in_flight, resume=True)
            while self._step():
                pass
        except _Stop as stop:
            self._set_phase("aborted" if stop.aborted else "stopped")
            return self._report(stopped=stop.aborted is None, aborted=stop.aborted)
        return self._report()

    # ------------------------------------------------------------------ steps

    def _step(self) -> bool:
        """One decision; False once the schedule is over."""
        if self.s.stop.is_set():
            raise _Stop()
        now = self.s.clock.time()
        st = self.state
        decision = self.schedule.next(st.began_ts, st.anchor_ts, st.last_slot, len(st.repetitions), now)
        self._record_skipped(decision.skipped, now)
        if decision.kind == "finished":
            st.finished_reason = decision.reason
            self._set_phase("finished", note=f"schedule finished: {decision.reason}")
            return False
        assert decision.slot is not None
        if decision.kind == "wait":
            self._wait_for(decision.slot)
        self._start(decision)
        return True

    def _wait_for(self, slot: Slot) -> None:
        remaining = slot.due - self.s.clock.time()
        if remaining <= 0:  # due now (or less than the on-time grace ago)
            return
        number = len(self.state.repetitions) + 1
        self.state.next_slot, self.state.next_due_at = slot.index, iso_utc(slot.due)
        self._set_phase("waiting")
        self.s.display.waiting(number, self.local_text(slot.due), remaining)
        try:
            while remaining > 0:
                chunk = min(remaining, self.s.display.tick_s or MAX_WAIT_CHUNK_S, MAX_WAIT_CHUNK_S)
                if self.s.clock.wait(self.s.stop, chunk):
                    raise _Stop()
                remaining = slot.due - self.s.clock.time()
                self.s.display.tick(max(remaining, 0.0))
        finally:
            self.s.display.waited()

    def _start(self, decision: Decision) -> None:
        assert decision.slot is not None
        number = len(self.state.repetitions) + 1
        now = self.s.clock.time()
        record = RepetitionRecord(
            repetition=number,
            slot=decision.slot.index,
            directory=repetition_dir(number),
            due_at=iso_utc(decision.slot.due),
            late=decision.late,
            started_at=iso_utc(now),
        )
        self.state.repetitions.append(record)
        self.state.next_slot = self.state.next_due_at = None
        late = f", {now - decision.slot.due:.0f} s late (queued)" if decision.late else ""
        self.s.display.event(
            f"repetition {number} starts ({record.directory}, due {self.local_text(decision.slot.due)}{late})"
        )
        self._run_repetition(record, resume=False)

    def _run_repetition(self, record: RepetitionRecord, resume: bool) -> None:
        record.status, record.finished_at = "running", None
        self._set_phase("running")
        self._ran.append(record.repetition)
        outcome = self.s.repetitions.run(record.repetition, record.directory, resume)
        now = self.s.clock.time()
        record.status = outcome.status
        record.runs_total, record.runs_done, record.runs_failed = outcome.total, outcome.done, outcome.failed
        record.message = outcome.message
        record.finished_at = iso_utc(now) if record.finished else None
        self._save()
        self.s.display.event(
            f"repetition {record.repetition} {record.status}: {outcome.done}/{outcome.total} runs done"
            + (f", {outcome.failed} failed" if outcome.failed else "")
            + (f" ({outcome.message})" if outcome.message else "")
        )
        if outcome.status == "interrupted":
            raise _Stop()
        if outcome.status == "aborted":
            raise _Stop(aborted=f"repetition {record.repetition}: {outcome.message or 'aborted'}")
        self._reason = OVERRUN

    # ------------------------------------------------------------------ records

    def _record_skipped(self, skipped: Skipped | None, now: float) -> None:
        if skipped is None:
            return
        self.state.skipped.append(
            SkipRecord(
                first_slot=skipped.first.index,
                last_slot=skipped.last.index,
                count=skipped.count,
                first_due_at=iso_utc(skipped.first.due),
                last_due_at=iso_utc(skipped.last.due),
                reason=self._reason,
                recorded_at=iso_utc(now),
            )
        )
        self._save()
        self.s.display.event(
            f"skipped {skipped.count} start(s) from {self.local_text(skipped.first.due)} "
            f"({self._reason}; on_overrun: {self.schedule.on_overrun})"
        )

    def _set_phase(self, phase: DaemonPhase, note: str | None = None) -> None:
        self.state.phase = phase
        self._save()
        if note:
            self.s.display.event(note)

    def _save(self) -> None:
        self.s.store.save(self.state, self.s.clock.time())

    def local_text(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.schedule.zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    def _report(self, stopped: bool = False, aborted: str | None = None) -> DaemonReport:
        return DaemonReport(
            repetitions=list(self.state.repetitions),
            skipped=sum(s.count for s in self.state.skipped),
            phase=self.state.phase,
            stopped=stopped,
            aborted=aborted,
            ran=list(self._ran),
        )

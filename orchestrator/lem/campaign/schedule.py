"""When a daemon campaign's repetitions start: pure arithmetic on epoch seconds and a time zone.

The schedule is a sequence of *slots*. Slot 0 (the anchor) is the next local ``at`` at or
after the moment the schedule began (tomorrow when ``at`` has already passed today), or
that moment itself when ``at`` is unset. Slot k is the anchor plus k intervals — in local
wall-clock days when ``at`` is set and the interval is a whole number of days (so a 02:00
start stays at 02:00 across daylight-saving changes), in absolute seconds otherwise. A
local time that a spring-forward change skips resolves as zoneinfo does for ``fold=0``
(01:30 on a day that jumps from 01:00 to 02:00 becomes 02:30 of the new offset); a time
that occurs twice in autumn is its first occurrence.

A slot runs only when its local weekday is in ``days`` and it falls before the end
(``total_duration`` after the schedule began); ``repetitions`` caps how many run. A slot
whose time has passed when the schedule next looks (a repetition overran, or lem was not
running) by more than a minute (or half the interval, when that is shorter) is *missed*:
with ``on_overrun: queue`` the earliest missed slot runs at once and the later ones are
skipped; with ``skip`` all of them are skipped. Nothing here reads a clock: ``now`` is
always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from lem.config.campaign import DaemonConfig, duration_seconds

DAY_S = 86_400.0
ON_TIME_S = 60.0  # a start at most this late (and at most half an interval) is on time, not missed
MAX_SCAN = 1_000_000  # slots looked at in one decision (a 1 s interval over 11 days)

DecisionKind = Literal["run", "wait", "finished"]


@dataclass(frozen=True)
class Slot:
    index: int
    due: float  # epoch seconds


@dataclass(frozen=True)
class Skipped:
    """Consecutive missed slots that will not run."""

    first: Slot
    last: Slot
    count: int


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    slot: Slot | None = None  # "run": start it now; "wait": start it at slot.due
    skipped: Skipped | None = None
    late: bool = False  # "run" of a slot whose time had passed (queued)
    reason: str = ""  # "finished": why


class Schedule:
    """A daemon configuration in one time zone."""

    def __init__(self, daemon: DaemonConfig, zone: tzinfo) -> None:
        self.zone = zone
        self.interval_s = daemon.interval_s
        self.at = time.fromisoformat(daemon.at) if daemon.at else None
        self.days = daemon.weekdays
        self.total_s = duration_seconds(daemon.total_duration) if daemon.total_duration else None
        self.repetitions = daemon.repetitions
        self.on_overrun = daemon.on_overrun
        self.grace_s = min(ON_TIME_S, self.interval_s / 2)
        self._wall_days = (
            round(self.interval_s / DAY_S) if self.at is not None and self.interval_s % DAY_S == 0 else None
        )

    # ------------------------------------------------------------------ slots

    def anchor(self, began: float) -> float:
        """Slot 0: the first local ``at`` at or after ``began`` (or ``began`` itself)."""
        if self.at is None:
            return began
        today = datetime.fromtimestamp(began, self.zone).date()
        for offset in range(3):  # today or tomorrow (a skipped local time may land past midnight)
            candidate = self._local(today + timedelta(days=offset))
            if candidate >= began:
                return candidate
        raise AssertionError("unreachable: tomorrow's start is after today")

    def due(self, anchor: float, index: int) -> float:
        """The start time of slot ``index``."""
        if self._wall_days is not None:
            first = datetime.fromtimestamp(anchor, self.zone).date()
            return self._local(first + timedelta(days=index * self._wall_days))
        return anchor + index * self.interval_s

    def allowed(self, due: float) -> bool:
        return datetime.fromtimestamp(due, self.zone).weekday() in self.days

    def end(self, began: float) -> float | None:
        return began + self.total_s if self.total_s is not None else None

    def _local(self, day: date) -> float:
        assert self.at is not None
        return datetime.combine(day, self.at, tzinfo=self.zone).timestamp()

    # ------------------------------------------------------------------ decisions

    def next(self, began: float, anchor: float, last_slot: int, started: int, now: float) -> Decision:
        """What to do at ``now``, after slot ``last_slot`` (-1: none yet) and ``started`` repetitions."""
        if self.repetitions is not None and started >= self.repetitions:
            return Decision("finished", reason=f"{started} of {self.repetitions} repetitions run")
        end = self.end(began)
        missed: list[Slot] = []
        for index in range(last_slot + 1, last_slot + 1 + MAX_SCAN):
            due = self.due(anchor, index)
            if end is not None and due >= end:
                return self._finish_after(missed)
            if not self.allowed(due):
                continue
            slot = Slot(index, due)
            if due >= now - self.grace_s:
                return self._pick(missed, slot)
            missed.append(slot)
        raise ValueError(f"no start found within {MAX_SCAN} slots of slot {last_slot}")

    def upcoming(self, began: float, count: int) -> list[float]:
        """The first ``count`` start times of a schedule beginning at ``began`` (for ``--dry-run``)."""
        anchor = self.anchor(began)
        out: list[float] = []
        last, started = -1, 0
        while len(out) < count:
            decision = self.next(began, anchor, last, started, began)
            if decision.slot is None:
                break
            out.append(decision.slot.due)
            last, started = decision.slot.index, started + 1
        return out

    def _pick(self, missed: list[Slot], future: Slot) -> Decision:
        if not missed:
            return Decision("wait", future)
        if self.on_overrun == "queue":
            return Decision("run", missed[0], _skipped(missed[1:]), late=True)
        return Decision("wait", future, _skipped(missed))

    def _finish_after(self, missed: list[Slot]) -> Decision:
        if missed and self.on_overrun == "queue":
            return Decision("run", missed[0], _skipped(missed[1:]), late=True)
        return Decision("finished", skipped=_skipped(missed), reason="total_duration reached")


def _skipped(slots: list[Slot]) -> Skipped | None:
    return Skipped(slots[0], slots[-1], len(slots)) if slots else None

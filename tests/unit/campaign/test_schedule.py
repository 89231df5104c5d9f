"""Schedule arithmetic on known dates: `at` in local time across DST changes, `at` already passed,
`days` filters, interval stepping, the end of the schedule and overrun (queue / skip)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from lem.campaign.schedule import Decision, Schedule, Skipped, Slot
from lem.config.campaign import DaemonConfig

LONDON = ZoneInfo("Europe/London")


def ts(text: str, zone: ZoneInfo = LONDON) -> float:
    """Local wall-clock time (fold 0) -> epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def local(epoch: float, zone: ZoneInfo = LONDON) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z")


def schedule(**daemon: Any) -> Schedule:
    return Schedule(DaemonConfig(enabled=True, **daemon), LONDON)


def test_at_not_yet_passed_starts_today_and_passed_starts_tomorrow() -> None:
    s = schedule(at="02:00")
    assert local(s.anchor(ts("2026-06-10T01:59"))) == "2026-06-10 02:00 BST"
    assert local(s.anchor(ts("2026-06-10T02:00"))) == "2026-06-10 02:00 BST"  # exactly now: today
    assert local(s.anchor(ts("2026-06-10T02:01"))) == "2026-06-11 02:00 BST"  # passed: tomorrow
    assert s.anchor(ts("2026-06-10T09:30")) == ts("2026-06-11T02:00")


def test_daily_at_keeps_the_local_time_across_spring_and_autumn_changes() -> None:
    # 2026: clocks go forward on Sun 29 March (01:00 GMT -> 02:00 BST), back on Sun 25 October.
    s = schedule(at="02:30", interval="1d")
    anchor = s.anchor(ts("2026-03-27T12:00"))
    assert [local(s.due(anchor, k)) for k in range(4)] == [
        "2026-03-28 02:30 GMT",
        "2026-03-29 02:30 BST",
        "2026-03-30 02:30 BST",
        "2026-03-31 02:30 BST",
    ]
    assert s.due(anchor, 1) - s.due(anchor, 0) == 23 * 3600  # the short day
    autumn = s.anchor(ts("2026-10-24T00:00"))
    assert [local(s.due(autumn, k)) for k in range(3)] == [
        "2026-10-24 02:30 BST",
        "2026-10-25 02:30 GMT",
        "2026-10-26 02:30 GMT",
    ]
    assert s.due(autumn, 1) - s.due(autumn, 0) == 25 * 3600  # the long day


def test_a_local_time_skipped_by_spring_forward_starts_an_hour_later_and_a_doubled_one_at_its_first() -> None:
    s = schedule(at="01:30", interval="24h")
    anchor = s.anchor(ts("2026-03-28T12:00"))  # 01:30 on 29 March does not exist in London
    assert local(anchor) == "2026-03-29 02:30 BST"
    assert anchor == datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert local(s.due(anchor, 1)) == "2026-03-30 01:30 BST"
    twice = s.anchor(ts("2026-10-25T00:10"))  # 01:30 on 25 October happens twice: the first (BST)
    assert local(twice) == "2026-10-25 01:30 BST"
    assert twice == datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()


def test_sub_day_intervals_step_in_real_seconds_across_a_dst_change() -> None:
    s = schedule(at="00:00", interval="6h")
    anchor = s.anchor(ts("2026-03-28T23:00"))
    assert [local(s.due(anchor, k)) for k in range(3)] == [
        "2026-03-29 00:00 GMT",
        "2026-03-29 07:00 BST",  # 6 real hours after 00:00 GMT
        "2026-03-29 13:00 BST",
    ]


def test_without_at_the_first_repetition_starts_at_once() -> None:
    s = schedule(interval="30s", repetitions=3)
    began = ts("2026-06-10T10:00")
    assert s.next(began, s.anchor(began), -1, 0, began) == Decision("wait", Slot(0, began))
    assert s.upcoming(began, 5) == [began, began + 30, began + 60]


def test_days_filters_keep_only_those_weekdays() -> None:
    # 2026-06-12 is a Friday.
    weekdays = schedule(at="02:00", days="weekdays")
    assert [local(t) for t in weekdays.upcoming(ts("2026-06-12T01:00"), 3)] == [
        "2026-06-12 02:00 BST",
        "2026-06-15 02:00 BST",  # Monday: Saturday and Sunday left out
        "2026-06-16 02:00 BST",
    ]
    weekends = schedule(at="02:00", days="weekends")
    assert [
        datetime.fromtimestamp(t, LONDON).strftime("%a") for t in weekends.upcoming(ts("2026-06-12T01:00"), 3)
    ] == [
        "Sat",
        "Sun",
        "Sat",
    ]
    listed = schedule(at="23:00", days=["mon", "wed"])
    assert [local(t) for t in listed.upcoming(ts("2026-06-12T01:00"), 2)] == [
        "2026-06-15 23:00 BST",
        "2026-06-17 23:00 BST",
    ]
    assert DaemonConfig(enabled=True, at="01:00", days="weekends").weekdays == frozenset({5, 6})


def test_bad_days_are_refused_with_what_to_write() -> None:
    with pytest.raises(ValidationError, match="'weekdays', 'weekends' or a list"):
        DaemonConfig(enabled=True, at="01:00", days="daily")
    with pytest.raises(ValidationError, match="lists a day twice"):
        DaemonConfig(enabled=True, at="01:00", days=["mon", "mon"])
    with pytest.raises(ValidationError):
        DaemonConfig(enabled=True, at="01:00", days=["monday"])
    with pytest.raises(ValidationError):
        DaemonConfig(enabled=True, at="01:00", on_overrun="later")


def test_total_duration_and_repetitions_end_the_schedule() -> None:
    began = ts("2026-06-10T10:00")
    s = schedule(interval="6h", total_duration="1d")
    assert [local(t) for t in s.upcoming(began, 10)] == [
        "2026-06-10 10:00 BST",
        "2026-06-10 16:00 BST",
        "2026-06-10 22:00 BST",
        "2026-06-11 04:00 BST",  # 10:00 the next day is the end itself: not run
    ]
    assert s.next(began, began, 3, 4, began + 18 * 3600 + 60) == Decision(
        "finished", reason="total_duration reached"
    )
    capped = schedule(interval="6h", repetitions=2)
    assert capped.next(began, began, 1, 2, began) == Decision("finished", reason="2 of 2 repetitions run")


def test_overrun_queue_runs_the_earliest_missed_start_at_once_and_skips_the_rest() -> None:
    began = ts("2026-06-10T10:00")
    s = schedule(interval="1h", on_overrun="queue")
    # repetition 0 ran from 10:00 until 12:30: the 11:00 and 12:00 starts passed meanwhile
    now = began + 2.5 * 3600
    assert s.next(began, began, 0, 1, now) == Decision(
        "run", Slot(1, began + 3600), Skipped(Slot(2, began + 7200), Slot(2, began + 7200), 1), late=True
    )
    # a repetition that ends before the next start: just wait
    assert s.next(began, began, 0, 1, began + 1800) == Decision("wait", Slot(1, began + 3600))


def test_overrun_skip_skips_every_missed_start_and_waits_for_the_next() -> None:
    began = ts("2026-06-10T10:00")
    s = schedule(interval="1h", on_overrun="skip")
    now = began + 2.5 * 3600
    assert s.next(began, began, 0, 1, now) == Decision(
        "wait", Slot(3, began + 3 * 3600), Skipped(Slot(1, began + 3600), Slot(2, began + 7200), 2)
    )


def test_missed_starts_after_the_end_queue_one_last_run_or_finish() -> None:
    began = ts("2026-06-10T10:00")
    queue = schedule(interval="1h", total_duration="2h")
    late = began + 5 * 3600
    assert queue.next(began, began, 0, 1, late) == Decision("run", Slot(1, began + 3600), None, late=True)
    skip = schedule(interval="1h", total_duration="2h", on_overrun="skip")
    assert skip.next(began, began, 0, 1, late) == Decision(
        "finished",
        skipped=Skipped(Slot(1, began + 3600), Slot(1, began + 3600), 1),
        reason="total_duration reached",
    )


def test_a_start_less_than_a_minute_late_is_on_time_not_missed() -> None:
    began = ts("2026-06-10T10:00")
    s = schedule(interval="1h", on_overrun="skip")
    assert s.next(began, began, -1, 0, began + 0.2) == Decision("wait", Slot(0, began))  # runs at once
    assert s.next(began, began, 0, 1, began + 3600 + 60) == Decision("wait", Slot(1, began + 3600))
    assert s.next(began, began, 0, 1, began + 3600 + 61) == Decision(
        "wait", Slot(2, began + 7200), Skipped(Slot(1, began + 3600), Slot(1, began + 3600), 1)
    )
    short = schedule(interval="30s", on_overrun="skip")  # half the interval: 15 s
    assert short.next(began, began, 0, 1, began + 45) == Decision("wait", Slot(1, began + 30))
    assert short.next(began, began, 0, 1, began + 45.5).skipped == Skipped(
        Slot(1, began + 30), Slot(1, began + 30), 1
    )

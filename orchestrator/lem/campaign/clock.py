"""Time behind a small protocol, so that the scheduler is driven by a fake clock in tests.

``monotonic`` measures durations, ``time`` stamps records (seconds since the epoch),
``sleep`` waits, ``wait`` waits until an event is set or a timeout passes (how gaps end
early on Ctrl-C). The campaign never calls ``time.sleep`` directly.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds have passed (False)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(timeout, 0.0))


class FakeClock:
    """A clock that only moves when told to: ``sleep`` and ``wait`` advance it instantly.

    ``schedule(at, action)`` runs ``action`` when the clock reaches ``at`` (monotonic time), as
    a timer or a signal handler would; a ``wait`` whose event it sets ends at that moment.
    ``sleeps`` records every sleep and wait asked for, so tests can assert exact waits.
    """

    def __init__(self, start: float = 1_000.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._offset = epoch - start
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._offset

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        heapq.heappush(self._timers, (at, next(self._order), action))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.sleeps.append(timeout)
        deadline = self._now + max(timeout, 0.0)
        while not event.is_set() and self._timers and self._timers[0][0] <= deadline:
            at, _, action = heapq.heappop(self._timers)
            self._now = max(self._now, at)
            action()
        if not event.is_set():
            self._now = max(self._now, deadline)
        return event.is_set()

    def advance(self, seconds: float) -> None:
        """Move on by ``seconds``, running the timers due on the way."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        deadline = self._now + seconds
        while self._timers and self._timers[0][0] <= deadline:
            at, _, action = heapq.heappop(self._timers)
            self._now = max(self._now, at)
            action()
        self._now = deadline


def sleep_unless_stopped(clock: Clock, seconds: float, stop: threading.Event) -> float:
    """Wait ``seconds``, ending early once ``stop`` is set; the time actually waited."""
    start = clock.monotonic()
    if seconds > 0 and not stop.is_set():
        clock.wait(stop, seconds)
    return clock.monotonic() - start

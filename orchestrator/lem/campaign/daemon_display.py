"""What a person sees between repetitions: the next start and a countdown, or one line per event.

``LogScheduleDisplay`` (``--quiet``, or output that is not a terminal) writes one line per
event and never ticks. ``RichScheduleDisplay`` draws a live line, updated every second:
``repetition 2 starts at 2026-12-02 02:00:00 GMT — in 9:41:07``.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.text import Text

from lem.campaign.progress import format_duration


def waiting_line(repetition: int, due_local: str, seconds: float) -> str:
    return f"repetition {repetition} starts at {due_local} — in {format_duration(seconds)}"


class LogScheduleDisplay:
    """One plain line per event."""

    tick_s: float | None = None

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def event(self, text: str) -> None:
        self._write(text)

    def waiting(self, repetition: int, due_local: str, seconds: float) -> None:
        self._write(f"waiting: {waiting_line(repetition, due_local, seconds)}")

    def tick(self, remaining_s: float) -> None:
        return None

    def waited(self) -> None:
        return None


class RichScheduleDisplay:
    """A countdown line that redraws every second while waiting."""

    tick_s: float | None = 1.0

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None
        self._head = ""

    def event(self, text: str) -> None:
        self._console.print(text, highlight=False)

    def waiting(self, repetition: int, due_local: str, seconds: float) -> None:
        self._head = f"repetition {repetition} starts at {due_local}"
        self._live = Live(self._text(seconds), console=self._console, transient=True, auto_refresh=False)
        self._live.start(refresh=True)

    def tick(self, remaining_s: float) -> None:
        if self._live is not None:
            self._live.update(self._text(remaining_s), refresh=True)

    def waited(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _text(self, seconds: float) -> Text:
        return Text(
            f"{self._head} — in {format_duration(seconds)} (Ctrl-C to stop; --resume keeps the schedule)"
        )

"""Ctrl-C, SIGTERM and SIGHUP (a dropped ssh session) during a campaign.

The first signal sets the campaign's stop event: the runtime stops the running container
(SIGTERM, then SIGKILL after a grace period), the run is marked ``interrupted``, the manifest is
saved and the command exits 130. A second signal kills what runs now (``on_force``: the
runtime's ``abandon``) and exits at once (130); the manifest on disk is still whole (every
write is atomic) and the run it shows as ``running`` is run again by ``--resume``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130
_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_Handler = Callable[[int, FrameType | None], object] | int | None


class StopOnSignal:
    """Signal handler: first call → stop event and a notice; second → ``force_exit(130)``."""

    def __init__(
        self,
        stop: threading.Event,
        notify: Callable[[str], None],
        force_exit: Callable[[int], object] = os._exit,
        on_force: Callable[[], None] | None = None,
    ) -> None:
        self.stop = stop
        self._notify = notify
        self._force_exit = force_exit
        self._on_force = on_force
        self.received: list[str] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if len(self.received) > 1:
            self._notify(f"{name} again: exiting now; `--resume` runs the unfinished run again")
            if self._on_force is not None:
                self._on_force()
            self._force_exit(EXIT_INTERRUPTED)
            return
        self.stop.set()
        self._notify(f"{name}: stopping the running container and saving the manifest (again to force)")


@contextmanager
def stop_on_signals(
    stop: threading.Event,
    notify: Callable[[str], None],
    force_exit: Callable[[int], object] = os._exit,
    on_force: Callable[[], None] | None = None,
) -> Iterator[StopOnSignal]:
    """Install the handler for SIGINT, SIGTERM, SIGHUP (main thread only); restore the old ones after."""
    handler = StopOnSignal(stop, notify, force_exit, on_force)
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous: dict[signal.Signals, _Handler] = {sig: signal.getsignal(sig) for sig in _HANDLED}
    for sig in _HANDLED:
        signal.signal(sig, handler)
    try:
        yield handler
    finally:
        for old_sig, old in previous.items():
            signal.signal(old_sig, old if old is not None else signal.SIG_DFL)

"""Ctrl-C / SIGTERM: the first sets the stop event, the second forces the exit; handlers restored."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from lem.campaign.clock import SystemClock
from lem.campaign.signals import EXIT_INTERRUPTED, StopOnSignal, stop_on_signals
from lem.runtime.spec import ContainerSpec
from tests.unit.campaign.helpers import Bench


def test_the_first_signal_sets_the_stop_event_and_says_what_happens() -> None:
    stop = threading.Event()
    notes: list[str] = []
    exits: list[int] = []
    handler = StopOnSignal(stop, notes.append, exits.append)
    handler(signal.SIGINT, None)
    assert stop.is_set()
    assert notes == ["SIGINT: stopping the running container and saving the manifest (again to force)"]
    assert exits == []


def test_the_second_signal_forces_exit_130() -> None:
    stop = threading.Event()
    notes: list[str] = []
    exits: list[int] = []
    handler = StopOnSignal(stop, notes.append, exits.append)
    handler(signal.SIGTERM, None)
    handler(signal.SIGINT, None)
    assert exits == [EXIT_INTERRUPTED] == [130]
    assert notes[1] == "SIGINT again: exiting now; `--resume` runs the unfinished run again"
    assert handler.received == ["SIGTERM", "SIGINT"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_real_signals_reach_the_handler_and_the_old_handlers_come_back(signum: signal.Signals) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = threading.Event()
    notes: list[str] = []
    with stop_on_signals(stop, notes.append, force_exit=lambda code: None):
        os.kill(os.getpid(), signum)  # no KeyboardInterrupt, no exit: just the event
        assert stop.wait(5.0)
    assert {s: signal.getsignal(s) for s in before} == before
    assert notes[0].startswith(f"{signum.name}: stopping")


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def worker() -> None:
        with stop_on_signals(threading.Event(), print) as handler:
            seen.append(signal.getsignal(signal.SIGINT) is handler)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False]


def test_sigint_mid_campaign_interrupts_the_run_and_leaves_a_consistent_manifest(bench: Bench) -> None:
    exits: list[int] = []

    def press_ctrl_c(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == "pytorch-bs2-c01":
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.wait(5.0)  # the handler ran: the runtime now kills the container

    bench.runtime.during_run = press_ctrl_c
    with stop_on_signals(bench.stop, bench.lines.append, force_exit=exits.append):
        # Bench.launch clears the event first; the handler shares it
        report = bench.launch().report
    assert report.exit_code == 130
    assert bench.statuses() == ["done", "interrupted", "pending", "pending"]
    assert exits == []
    assert "SIGINT: stopping the running container and saving the manifest (again to force)" in bench.lines


def test_ctrl_c_ends_a_real_clock_wait_at_once() -> None:
    stop = threading.Event()
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    with stop_on_signals(stop, lambda text: None, force_exit=lambda code: None):
        timer.start()
        started = time.monotonic()
        assert SystemClock().wait(stop, 60.0) is True  # a 60 s gap, cut short by the signal
        waited = time.monotonic() - started
    timer.join()
    assert waited < 5.0

"""How a run stops early: SIGTERM through a gate, and the error a failed run reports.

A SIGTERM handler calls ``InterruptGate.signal``: while the run's steps execute (the gate is
armed) it raises ``RunInterrupted``, which unwinds them like any error; once the run is
closing (engine, devices, timeline, result) it is only recorded, so closing and writing
finish and the result still says the run was interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lem_harness.contract import ErrorInfo
from lem_harness.datasets import DatasetError
from lem_harness.devices import DeviceError
from lem_harness.engines.base import EngineUnavailableError

logger = logging.getLogger("lem_harness")

# Failures a person can act on from the message alone: logged without a traceback.
EXPECTED_ERRORS = (DatasetError, EngineUnavailableError, DeviceError, FileNotFoundError)


class RunInterrupted(BaseException):
    """SIGTERM arrived: unwind (closing windows and devices) and write a failed result."""


class InterruptGate:
    """Where a SIGTERM lands: raised as ``RunInterrupted`` while armed, recorded otherwise."""

    def __init__(self) -> None:
        self.armed = False
        self.received: str | None = None

    def signal(self, name: str) -> None:
        """Called by the signal handler."""
        if self.received is None:
            self.received = name
        if self.armed:
            self.armed = False
            raise RunInterrupted(f"received {name}: the run was stopped")

    def error(self) -> ErrorInfo | None:
        """The error to report for a signal that arrived while the run was closing."""
        if self.received is None:
            return None
        return ErrorInfo(type="RunInterrupted", message=f"received {self.received}: the run was stopped")


def run_armed(steps: Callable[[], None], gate: InterruptGate) -> ErrorInfo | None:
    """Run ``steps`` with SIGTERM armed; the error they ended with, if any."""
    try:
        try:
            gate.armed = True
            steps()
        finally:
            gate.armed = False
    except (Exception, KeyboardInterrupt, RunInterrupted) as e:
        return error_info(e)
    return None


def error_info(error: BaseException) -> ErrorInfo:
    if isinstance(error, (*EXPECTED_ERRORS, RunInterrupted, KeyboardInterrupt)):
        logger.error("run failed: %s: %s", type(error).__name__, error)
    else:
        logger.exception("run failed")
    message = str(error) or repr(error)
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted (SIGINT)"
    return ErrorInfo(type=type(error).__name__, message=message)

"""The live view: a run's status.json in one line, a thermal gap's target, and the screen a real
terminal shows (a pseudo-terminal read through the pyte terminal emulator)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pyte

from lem.campaign.clock import FakeClock
from lem.campaign.gaps import GapWaiter, GpuReading
from lem.campaign.live import describe, read_status
from lem.config.campaign import ExecutionConfig
from lem_harness.contract import STATUS_FILE, LiveStatus

REPO = Path(__file__).resolve().parents[3]


def _status(**fields: object) -> LiveStatus:
    return LiveStatus.model_validate({"phase_started_unix_s": 100.0, "updated_unix_s": 100.0, **fields})


def test_each_phase_in_one_line() -> None:
    assert describe(None, 0.0) == "starting (no status from the harness yet)"
    assert describe(_status(phase="baseline", power_w=61.4, temperature_c=38.0), 112.0) == (
        "idle baseline · 61 W · 38 °C (0:12)"
    )
    assert describe(_status(phase="loading"), 105.0) == "loading the model (0:05)"
    assert describe(_status(phase="warmup", warmup_batches=3, warmup_cv=0.0421), 130.0) == (
        "warmup: batch 3, CV 4.2 % (0:30)"
    )
    assert describe(_status(phase="warmup", warmup_batches=1), 101.0) == "warmup: batch 1, CV — (0:01)"
    measuring = _status(phase="measuring", batches_done=5, batches_total=12, output_tokens=640, power_w=212.0)
    assert describe(measuring, 190.0) == "measuring: batch 5/12, 640 tokens · 212 W (1:30)"
    assert describe(_status(phase="writing"), 100.0) == "writing the result (0:00)"


def test_a_missing_or_half_written_status_reads_as_none(tmp_path: Path) -> None:
    assert read_status(tmp_path) is None
    (tmp_path / STATUS_FILE).write_text('{"phase": "measu')
    assert read_status(tmp_path) is None
    (tmp_path / STATUS_FILE).write_text(_status(phase="loading").model_dump_json())
    assert read_status(tmp_path) == _status(phase="loading")


class Probe:
    def __init__(self, readings: list[list[GpuReading]]) -> None:
        self.readings = readings

    def read(self) -> list[GpuReading]:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def close(self) -> None:
        return None


def test_a_thermal_gap_shows_each_gpu_against_its_target() -> None:
    import threading

    execution = ExecutionConfig.model_validate(
        {"gap_mode": "thermal", "thermal": {"temperature_tolerance_c": 3, "min_gap_seconds": 0}}
    )
    probe = Probe(
        [[GpuReading("GPU-aaaaaaaa-1111", 40.0, 60.0)], [GpuReading("GPU-aaaaaaaa-1111", 58.4, 210.0)]]
    )
    waiter = GapWaiter(execution, FakeClock(), threading.Event(), probe=probe, warn=print)
    assert waiter.status_line() == "GPU-aaaaaaaa 40 °C → ≤ 43 °C"  # the calibration reading
    waiter._read()
    assert waiter.status_line() == "GPU-aaaaaaaa 58 °C → ≤ 43 °C"
    fixed = GapWaiter(ExecutionConfig(), FakeClock(), threading.Event(), probe=probe, warn=print)
    assert fixed.status_line() is None  # fixed gaps have no target


SCRIPT = """
import sys, time
from pathlib import Path
from rich.console import Console
from lem.campaign.clock import FakeClock
from lem.campaign.plan import PlannedRun
from lem.campaign.progress import RichProgress

run_dir = Path(sys.argv[1])
run = PlannedRun(run_id="demo-bs4-c01", cycle=1, position=1, config_id="x", name="demo-bs4",
                 backend="pytorch", axis_values={}, gap_before_s=0.0, gap_kind="config")
bar = RichProgress(FakeClock(), Console(), wall=lambda: 130.0, refresh_per_second=20)
bar.campaign_started(3, 1, [run])
bar.run_started(run, 1, run_dir)
time.sleep(1.0)
print("", flush=True)
sys.stdin.readline()  # the test has read the screen
bar.campaign_finished()
"""


def _read_until(fd: int, screen: pyte.Screen, stream: pyte.ByteStream, needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                stream.feed(os.read(fd, 65536))
            except OSError:
                break
        if any(needle in line for line in screen.display):
            return
    raise AssertionError(f"{needle!r} never appeared on the screen:\n" + "\n".join(screen.display))


def test_the_live_view_in_a_real_terminal_shows_the_phase_power_and_temperature(tmp_path: Path) -> None:
    (tmp_path / STATUS_FILE).write_text(
        _status(
            phase="measuring",
            batches_done=2,
            batches_total=4,
            output_tokens=64,
            power_w=150.0,
            temperature_c=61.0,
        ).model_dump_json()
    )
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "10", "TERM": "xterm-256color", "PYTHONPATH": str(REPO)}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    )
    os.close(child)
    screen = pyte.Screen(120, 10)
    stream = pyte.ByteStream(screen)
    try:
        _read_until(main, screen, stream, "measuring: batch 2/4, 64 tokens · 150 W · 61 °C (0:30)", 60.0)
        lines = [line.rstrip() for line in screen.display if line.strip()]
        bar = next(line for line in lines if "demo-bs4 cycle 1" in line)
        assert "1/3" in bar  # one run already done of three
        assert lines[lines.index(bar) + 1].strip() == "measuring: batch 2/4, 64 tokens · 150 W · 61 °C (0:30)"
        os.write(main, b"\n")
        proc.wait(timeout=30)
    finally:
        proc.kill()
        os.close(main)

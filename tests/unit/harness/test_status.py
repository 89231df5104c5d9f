"""``status.json``: the harness's live progress, written at phase changes and (throttled) as it goes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lem_harness.contract import LiveStatus
from lem_harness.engines.base import BatchResult
from lem_harness.measure.sampler import TimelineRow
from lem_harness.status import StatusFile
from tests.unit.harness.test_runner import FakeClock, FakeEngine, _run, _spec


def _read(path: Path) -> LiveStatus:
    return LiveStatus.model_validate_json(path.read_text())


def _row(uuid: str, power: float | None, temp: float | None) -> TimelineRow:
    return TimelineRow(1.0, 1.7e9, "measure", 0, uuid, power, temp, None, None, None, None)


def test_phases_are_written_at_once_and_progress_at_most_every_interval(tmp_path: Path) -> None:
    now = [100.0]
    status = StatusFile(tmp_path, lambda: now[0], min_interval_s=1.0)
    status.phase("measuring", batches_done=0, batches_total=4, output_tokens=0)
    assert _read(status.path).model_dump(exclude_none=True) == {
        "phase": "measuring",
        "phase_started_unix_s": 100.0,
        "updated_unix_s": 100.0,
        "batches_done": 0,
        "batches_total": 4,
        "output_tokens": 0,
    }
    now[0] = 100.4
    status.update(batches_done=1, output_tokens=32)  # 0.4 s after the last write: kept, not written
    assert _read(status.path).output_tokens == 0 and status.status.output_tokens == 32
    now[0] = 101.0
    status.telemetry([_row("GPU-a", 150.0, 61.0), _row("GPU-b", 140.0, 64.5), _row("GPU-c", None, None)])
    on_disk = _read(status.path)
    assert (on_disk.output_tokens, on_disk.power_w, on_disk.temperature_c) == (32, 290.0, 64.5)
    now[0] = 101.2
    status.phase("writing")  # a phase change is written at once; telemetry carries over
    on_disk = _read(status.path)
    assert (on_disk.phase, on_disk.output_tokens, on_disk.power_w) == ("writing", None, 290.0)


def test_a_status_that_cannot_be_written_never_fails_the_run(tmp_path: Path) -> None:
    status = StatusFile(tmp_path / "missing" / "dir", lambda: 1.0)
    status.phase("baseline")  # logged, not raised
    assert status.status.phase == "baseline"


class WatchingEngine(FakeEngine):
    """Reads status.json as each batch starts, as the host's live view would."""

    status_path: Path
    seen: list[dict[str, object]]

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        data = json.loads(self.status_path.read_text())
        self.seen.append({k: data[k] for k in ("phase", "warmup_batches", "batches_done", "output_tokens")})
        return super().generate(prompts)


def test_the_runner_reports_each_phase_as_it_enters_it(tmp_path: Path) -> None:
    out = tmp_path / "out"  # where _run has the harness write
    WatchingEngine.status_path, WatchingEngine.seen = out / "status.json", []
    result, _ = _run(tmp_path, _spec(tmp_path), FakeClock(1000.0), engine_cls=WatchingEngine)
    assert result.status == "ok", result.error
    assert WatchingEngine.seen[0] == {
        "phase": "warmup",
        "warmup_batches": 0,
        "batches_done": None,
        "output_tokens": None,
    }
    measuring = [s for s in WatchingEngine.seen if s["phase"] == "measuring"]
    assert measuring[0] == {
        "phase": "measuring",
        "warmup_batches": None,
        "batches_done": 0,
        "output_tokens": 0,
    }
    assert len(measuring) == 3  # 6 prompts in batches of 2
    assert _read(out / "status.json").phase == "writing"

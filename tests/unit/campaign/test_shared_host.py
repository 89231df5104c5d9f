"""Resume that verifies, no silent fresh start, one lem per results directory, no followed links."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lem.campaign.manifest import MANIFEST_FILE, ManifestError
from lem.campaign.session import remove_temp_files
from lem.runtime.process import ProcessId, host_id, record_attempt, start_ticks
from lem_harness.contract import RESULT_FILE
from tests.unit.campaign.helpers import RUN_IDS, Bench


def test_resume_reruns_a_done_run_whose_result_was_deleted_or_changed(bench: Bench) -> None:
    bench.launch()
    (bench.campaign_dir / RUN_IDS[0] / RESULT_FILE).unlink()
    with (bench.campaign_dir / RUN_IDS[2] / RESULT_FILE).open("a") as f:
        f.write(" ")  # still valid JSON, but not the bytes that were judged
    bench.runtime.started.clear()

    bench.launch(resume=True)

    assert dict(bench.runtime.started) == {RUN_IDS[0]: 1, RUN_IDS[2]: 1}
    assert bench.statuses() == ["done"] * 4
    notes = [line for line in bench.lines if "resume:" in line]
    assert len(notes) == 2
    assert notes[0].endswith(
        f"resume: {RUN_IDS[0]}: {bench.campaign_dir / RUN_IDS[0]}/result.json is missing; runs again"
    )
    assert f"{RUN_IDS[2]}/result.json changed since it was judged" in notes[1]


def test_no_rerun_lists_broken_results_and_leaves_them_for_a_later_resume(bench: Bench) -> None:
    bench.launch()
    (bench.campaign_dir / RUN_IDS[1] / RESULT_FILE).write_text("garbage")
    bench.runtime.started.clear()

    result = bench.launch(resume=True, no_rerun=True)

    assert dict(bench.runtime.started) == {}
    assert result.report.exit_code == 1
    assert [run_id for run_id, _ in result.report.problems] == [RUN_IDS[1]]
    entry = bench.manifest().entry(RUN_IDS[1])
    assert (entry.status, entry.outcome) == ("failed", "result_corrupt")
    assert "not re-run (--no-rerun)" in (entry.message or "")
    bench.launch(resume=True)
    assert dict(bench.runtime.started) == {RUN_IDS[1]: 1}


def test_a_directory_with_runs_but_no_manifest_is_refused_and_fresh_archives_it(bench: Bench) -> None:
    bench.launch()
    (bench.campaign_dir / MANIFEST_FILE).unlink()
    before = sorted(p.name for p in bench.campaign_dir.iterdir())
    with pytest.raises(ManifestError, match=r"holds 4 entries .* but no manifest.json: .* pass --fresh"):
        bench.launch()
    with pytest.raises(ManifestError, match="holds 4 entries"):
        bench.launch(resume=True)
    assert sorted(p.name for p in bench.campaign_dir.iterdir()) == before  # nothing touched

    bench.launch(fresh=True)

    archived = [p for p in bench.results_root.iterdir() if p.name.startswith("demo.archived-")]
    assert len(archived) == 1 and sorted(p.name for p in archived[0].iterdir()) == before
    assert bench.statuses() == ["done"] * 4


def test_an_existing_campaign_without_resume_points_at_resume_and_fresh(bench: Bench) -> None:
    bench.launch()
    with pytest.raises(ManifestError, match="pass --resume to continue it, or --fresh to archive"):
        bench.launch()


def test_a_manifest_planted_while_creating_is_not_overwritten(bench: Bench) -> None:
    from lem.campaign.manifest import _create_new

    path = bench.root / MANIFEST_FILE
    path.write_text("theirs")
    with pytest.raises(ManifestError, match="appeared while this campaign was being created"):
        _create_new(path, "ours")
    assert path.read_text() == "theirs"
    assert [p.name for p in bench.root.iterdir()] == [MANIFEST_FILE]  # no temp file left


def test_resume_refuses_a_run_whose_earlier_harness_still_lives(bench: Bench) -> None:
    bench.runtime.during_run = lambda spec, stop: stop.set()
    bench.launch()  # stopped during the first run: the manifest exists, nothing is done
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (bench.campaign_dir / RUN_IDS[1]).mkdir()
        ticks = start_ticks(sleeper.pid)
        assert ticks is not None
        record_attempt(bench.campaign_dir / RUN_IDS[1], ProcessId(host_id(), sleeper.pid, ticks, os.getuid()))
        in_flight = bench.campaign_dir / RUN_IDS[1] / ".result.json.ab12cd34.tmp"
        in_flight.write_text("{")  # what the live harness is writing
        with pytest.raises(ManifestError, match=rf"{RUN_IDS[1]} \(pid {sleeper.pid}\).*kill <pid>"):
            bench.launch(resume=True)
        assert in_flight.exists()  # refused before the sweep: a live harness's file is left alone
    finally:
        sleeper.kill()
        sleeper.wait()
    bench.runtime.during_run = None
    bench.launch(resume=True)  # the process is gone: the run runs again
    assert bench.statuses() == ["done"] * 4
    assert not in_flight.exists()  # swept once nothing writes it


def test_temp_files_of_killed_processes_are_swept_and_nothing_else(tmp_path: Path) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    leftovers = [tmp_path / ".manifest.json.ab12cd_9.tmp", run / ".result.json.zz99yy00.tmp"]
    keep = [run / "result.json", run / ".result.json.tmp", tmp_path / "notes.tmp"]
    for path in leftovers + keep:
        path.write_text("x")
    assert sorted(remove_temp_files(tmp_path)) == sorted(str(p) for p in leftovers)
    assert all(p.exists() for p in keep)


def test_a_container_log_planted_as_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    from lem.runtime.logsink import LogSink

    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(outside, run / "container.log")
    sink = LogSink(run / "container.log")
    sink.feed(b"hello\n")
    sink.close()
    assert outside.read_text() == "precious"
    assert not (run / "container.log").is_symlink() and (run / "container.log").read_text() == "hello\n"

"""Interrupt a campaign after k runs, resume it: exactly the rest runs, done runs never again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lem.campaign.liveness import CampaignBusy, LiveCampaign, ResultsDirLock, live_campaign_ids
from lem.campaign.manifest import ManifestError
from lem.runtime.spec import ContainerSpec
from tests.support.fake_runtime import FAIL
from tests.unit.campaign.helpers import RUN_IDS, Bench, campaign_config, make_bench


def stop_during(run_id: str) -> Callable[[ContainerSpec, threading.Event], None]:
    """A runtime hook that presses Ctrl-C while ``run_id`` runs."""

    def hook(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == run_id:
            stop.set()

    return hook


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_interrupt_during_run_k_then_resume_runs_exactly_the_rest(bench: Bench, k: int) -> None:
    bench.runtime.during_run = stop_during(RUN_IDS[k - 1])
    first = bench.launch()
    assert first.report.exit_code == 130
    assert bench.statuses() == ["done"] * (k - 1) + ["interrupted"] + ["pending"] * (4 - k)
    assert bench.manifest().entry(RUN_IDS[k - 1]).message == "stopped by request"
    assert [c.run_id for c in bench.runtime.calls] == RUN_IDS[:k]

    bench.runtime.during_run = None
    bench.runtime.calls.clear()
    second = bench.launch(resume=True)
    assert [c.run_id for c in bench.runtime.calls] == RUN_IDS[k - 1 :]
    assert bench.statuses() == ["done"] * 4
    assert [e.attempts for e in bench.manifest().entries()] == [1] * (k - 1) + [2] + [1] * (4 - k)
    assert second.resumed and second.report.exit_code == 0
    assert second.report.ran == RUN_IDS[k - 1 :]


def test_a_stop_during_a_gap_leaves_the_next_run_pending(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"config_gap_seconds": 60})

    bench.clock.schedule(1_015.0, bench.stop.set)  # 5 s into the gap after run 1 (10 s)
    report = bench.launch().report
    assert report.exit_code == 130 and report.stopped
    assert bench.statuses() == ["done", "pending", "pending", "pending"]
    assert [c.run_id for c in bench.runtime.calls] == ["pytorch-bs1-c01"]


def test_failed_runs_run_again_on_resume(bench: Bench) -> None:
    bench.runtime.script["pytorch-bs2-c01"] = [FAIL]
    assert bench.launch().report.exit_code == 1
    bench.runtime.script.clear()
    bench.runtime.calls.clear()
    assert bench.launch(resume=True).report.exit_code == 0
    assert [c.run_id for c in bench.runtime.calls] == ["pytorch-bs2-c01"]


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted_and_rerun(bench: Bench) -> None:
    class Crash(Exception):
        pass

    def crash(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == "pytorch-bs1-c02":
            raise Crash  # the lem process dies here (kill -9, power cut)

    bench.runtime.during_run = crash
    with pytest.raises(Crash):
        bench.launch()
    assert bench.statuses() == ["done", "done", "running", "pending"]
    bench.runtime.during_run = None
    bench.runtime.calls.clear()
    bench.launch(resume=True)
    assert [c.run_id for c in bench.runtime.calls] == ["pytorch-bs1-c02", "pytorch-bs2-c02"]
    assert bench.statuses() == ["done"] * 4


def test_resuming_a_finished_campaign_runs_nothing(bench: Bench) -> None:
    bench.launch()
    bench.runtime.calls.clear()
    result = bench.launch(resume=True)
    assert bench.runtime.calls == []
    assert result.report.exit_code == 0 and result.report.done == 4


def test_an_existing_campaign_is_never_overwritten_without_resume(bench: Bench) -> None:
    bench.launch()
    with pytest.raises(
        ManifestError, match=r"already holds this campaign \(4 of 4 runs done\): pass --resume"
    ):
        bench.launch()


def test_resume_refuses_a_changed_campaign(tmp_path: Path) -> None:
    make_bench(tmp_path).launch()
    changed = Bench(tmp_path, campaign_config({"cycles": 3}))
    with pytest.raises(ManifestError, match="different campaign definition"):
        changed.launch(resume=True)


def test_resume_accepts_changed_gaps_and_timeouts(tmp_path: Path) -> None:
    bench = make_bench(tmp_path)
    bench.runtime.during_run = stop_during("pytorch-bs2-c01")
    bench.launch()
    longer = Bench(tmp_path, campaign_config({"timeout_seconds": 7200, "config_gap_seconds": 1}))
    assert longer.launch(resume=True).report.exit_code == 0
    assert [c.run_id for c in longer.runtime.calls] == RUN_IDS[1:]
    assert {c.timeout_s for c in longer.runtime.calls} == {7200.0}


def test_resume_without_a_manifest_starts_the_campaign(bench: Bench) -> None:
    result = bench.launch(resume=True)
    assert not result.resumed
    assert bench.statuses() == ["done"] * 4


def test_one_results_directory_is_used_by_one_lem_process_at_a_time(bench: Bench) -> None:
    with (
        ResultsDirLock(bench.results_root, "demo"),
        pytest.raises(
            CampaignBusy, match=r"results/demo is in use by another lem process \(pid \d+, uid \d+\)"
        ),
    ):
        bench.launch()
    assert bench.runtime.calls == []
    assert not (bench.campaign_dir / "manifest.json").exists()


def test_live_campaigns_are_those_whose_lock_is_held(tmp_path: Path) -> None:
    registry = tmp_path / "live"
    (registry).mkdir()
    (registry / "dead-campaign.lock").write_text("12345\n")  # left by a process that died
    with LiveCampaign(registry, "running-one"):
        assert live_campaign_ids(registry) == {"running-one"}
    assert live_campaign_ids(registry) == set()
    assert list(registry.iterdir()) == [registry / "dead-campaign.lock"]  # its own file is removed
    assert live_campaign_ids(tmp_path / "missing") == set()

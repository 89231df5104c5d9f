"""The executor with a fake runtime and a fake clock: order, files, gaps, failures, retries."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lem.campaign.clock import FakeClock
from lem.campaign.coldstart import PageCacheDropper
from lem.campaign.executor import CampaignExecutor, Services
from lem.campaign.gaps import GapWaiter, GpuReading
from lem.campaign.preflight import PreflightFailed
from lem.campaign.progress import LogProgress
from lem.campaign.session import open_campaign
from lem.campaign.specs import CampaignSpecs
from lem.runtime.errors import RuntimeUnavailable
from lem.runtime.spec import LABEL_CAMPAIGN, LABEL_RUN, ContainerSpec
from lem_harness.contract import RESULT_FILE, SPEC_FILE, RunSpec
from tests.support.fake_runtime import FAIL, Play
from tests.unit.campaign.helpers import RUN_IDS, Bench, make_bench


def test_every_run_is_executed_once_in_plan_order(bench: Bench) -> None:
    result = bench.launch()
    assert [c.run_id for c in bench.runtime.calls] == RUN_IDS
    assert result.report.exit_code == 0
    assert (result.report.done, result.report.failed, result.report.pending) == (4, 0, 0)
    entries = bench.manifest().entries()
    assert [e.status for e in entries] == ["done"] * 4
    assert [e.attempts for e in entries] == [1] * 4
    assert [e.result_path for e in entries] == [f"{r}/result.json" for r in RUN_IDS]
    assert [e.duration_s for e in entries] == [10.0] * 4  # the fake runtime's 10 s per run
    assert entries[0].started_at == "2023-11-14T22:13:20.000+00:00"
    assert entries[3].finished_at == "2023-11-14T22:14:00.000+00:00"


def test_each_run_gets_its_spec_json_and_a_container_spec(bench: Bench) -> None:
    result = bench.launch()
    run_dir = bench.campaign_dir / "pytorch-bs2-c01"
    spec = RunSpec.model_validate_json((run_dir / SPEC_FILE).read_text())
    assert (spec.run_id, spec.cycle, spec.config_name) == ("pytorch-bs2-c01", 1, "pytorch-bs2")
    assert spec.campaign_id == result.campaign_id
    assert spec.campaign_id.startswith("demo-")
    assert spec.config.pytorch is not None and spec.config.pytorch.batch_size == 2
    assert spec.baseline_cache_dir == "/lem/cache/baseline"
    assert spec.engine_cache_dir is None
    assert spec.image is not None and spec.image.name == "llenergymeasure/pytorch:0.1.0"
    container: ContainerSpec = bench.runtime.calls[1]
    labels = dict(container.labels)
    assert (labels[LABEL_CAMPAIGN], labels[LABEL_RUN]) == (result.campaign_id, "pytorch-bs2-c01")
    assert container.run_dir() == str(run_dir.resolve())
    assert container.timeout_s == 3600.0
    assert container.gpu_uuids == ()


def test_the_per_experiment_timeout_reaches_the_container(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"timeout_seconds": 123})
    bench.launch()
    assert {c.timeout_s for c in bench.runtime.calls} == {123.0}


def test_fixed_gaps_are_waited_and_recorded(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"config_gap_seconds": 60, "cycle_gap_seconds": 300})
    bench.launch()
    entries = bench.manifest().entries()
    assert [e.gap_waited_s for e in entries] == [0.0, 60.0, 300.0, 60.0]
    assert [e.gap_ended_by for e in entries] == ["none", "fixed", "fixed", "fixed"]
    assert bench.clock.monotonic() - 1_000.0 == 4 * 10.0 + 420.0


def test_a_failed_run_does_not_stop_the_campaign(bench: Bench) -> None:
    bench.runtime.script["pytorch-bs2-c01"] = [FAIL]
    result = bench.launch()
    assert bench.statuses() == ["done", "failed", "done", "done"]
    failed = bench.manifest().entry("pytorch-bs2-c01")
    assert (failed.outcome, failed.attempts, failed.error_type) == ("failed", 1, "RuntimeError")
    # said once: the harness's own error, not the exit code and log lines that repeat it
    assert failed.message == "RuntimeError: engine crashed"
    assert failed.log_path == "pytorch-bs2-c01/container.log"
    assert result.report.exit_code == 1
    assert result.report.problems == [("pytorch-bs2-c01", f"failed: {failed.message}")]


def test_failed_runs_are_retried_only_as_often_as_asked(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"retries": 2, "config_gap_seconds": 30})
    bench.runtime.script["pytorch-bs1-c01"] = [FAIL, FAIL, Play()]
    result = bench.launch()
    first = bench.manifest().entry("pytorch-bs1-c01")
    assert (first.status, first.attempts, first.gap_waited_s) == ("done", 3, 30.0)  # last retry's gap
    assert bench.runtime.attempts("pytorch-bs1-c01") == 3
    assert result.report.exit_code == 0


def test_retries_run_out(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"retries": 1})
    bench.runtime.script["pytorch-bs1-c01"] = [FAIL]
    bench.launch()
    assert bench.runtime.attempts("pytorch-bs1-c01") == 2
    assert bench.manifest().entry("pytorch-bs1-c01").attempts == 2
    assert bench.statuses() == ["failed", "done", "done", "done"]


def test_no_retry_by_default(bench: Bench) -> None:
    bench.runtime.script["pytorch-bs1-c01"] = [FAIL, Play()]
    bench.launch()
    assert bench.runtime.attempts("pytorch-bs1-c01") == 1


def test_fail_fast_stops_after_the_first_failure(bench: Bench) -> None:
    bench.runtime.script["pytorch-bs2-c01"] = [FAIL]
    result = bench.launch(fail_fast=True)
    assert bench.statuses() == ["done", "failed", "pending", "pending"]
    assert len(bench.runtime.calls) == 2
    assert result.report.exit_code == 1
    assert result.report.aborted == "--fail-fast: pytorch-bs2-c01 failed"


@pytest.mark.parametrize(
    ("play", "outcome", "message", "error_type"),
    [
        (
            Play(outcome="timeout", result="none", exit_code=None, message="killed after 3600 s"),
            "timeout",
            "killed after 3600 s",
            "timeout",
        ),
        (Play(outcome="oom", result="none", exit_code=137, message="OOM-killed"), "oom", "OOM-killed", "oom"),
        (Play(result="none"), "result_missing", "{run_dir}/result.json was not written", "result_missing"),
        (
            Play(result="invalid"),
            "result_invalid",
            "{run_dir}/result.json: run_id: Field required",
            "result_invalid",
        ),
        (Play(result="failed"), "failed", "RuntimeError: engine crashed", "RuntimeError"),
    ],
)
def test_outcomes_map_to_failed_with_a_useful_message(
    tmp_path: Path, play: Play, outcome: str, message: str, error_type: str
) -> None:
    bench = make_bench(tmp_path)
    bench.runtime.script["pytorch-bs1-c01"] = [play]
    bench.launch()
    entry = bench.manifest().entry("pytorch-bs1-c01")
    assert (entry.status, entry.outcome, entry.error_type) == ("failed", outcome, error_type)
    assert entry.message == message.format(run_dir=bench.campaign_dir / "pytorch-bs1-c01")
    # a harness that failed still leaves its result (with the error) behind
    assert entry.result_path == ("pytorch-bs1-c01/result.json" if play.result == "failed" else None)


def test_the_breaker_stops_after_three_failures_of_the_same_class(bench: Bench) -> None:
    bench.runtime.default = FAIL
    result = bench.launch()
    assert bench.statuses() == ["failed", "failed", "failed", "pending"]
    assert len(bench.runtime.calls) == 3
    assert result.report.aborted == (
        "3 runs in a row failed with RuntimeError (execution.max_consecutive_failures: 3); "
        "fix the cause, then resume"
    )
    assert result.report.exit_code == 1


def test_the_breaker_counts_only_failures_of_one_class_in_a_row(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"max_consecutive_failures": 2})
    timeout = Play(outcome="timeout", result="none", exit_code=None, message="killed")
    bench.runtime.script = {
        "pytorch-bs1-c01": [FAIL],
        "pytorch-bs2-c01": [timeout],  # another class: the streak starts again at 1
        "pytorch-bs1-c02": [Play()],  # a success resets it
        "pytorch-bs2-c02": [FAIL],
    }
    result = bench.launch()
    assert bench.statuses() == ["failed", "failed", "done", "failed"]
    assert result.report.aborted is None


def test_the_breaker_trips_at_the_configured_count_and_zero_turns_it_off(tmp_path: Path) -> None:
    two = make_bench(tmp_path / "two", {"max_consecutive_failures": 2})
    two.runtime.default = FAIL
    assert "2 runs in a row failed with RuntimeError" in (two.launch().report.aborted or "")
    assert two.statuses() == ["failed", "failed", "pending", "pending"]
    off = make_bench(tmp_path / "off", {"max_consecutive_failures": 0})
    off.runtime.default = FAIL
    assert off.launch().report.aborted is None
    assert off.statuses() == ["failed"] * 4


def test_an_older_attempts_result_is_never_taken_for_this_one(bench: Bench) -> None:
    bench.runtime.script["pytorch-bs1-c01"] = [FAIL, Play(result="none")]
    bench.launch()
    assert (bench.campaign_dir / "pytorch-bs1-c01" / RESULT_FILE).exists()  # the failed attempt's
    bench.launch(resume=True)
    assert bench.manifest().entry("pytorch-bs1-c01").outcome == "result_missing"


def test_losing_the_runtime_aborts_the_campaign(bench: Bench) -> None:
    def die(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == "pytorch-bs2-c01":
            raise RuntimeUnavailable("connection refused")

    bench.runtime.during_run = die
    result = bench.launch()
    assert bench.statuses() == ["done", "failed", "pending", "pending"]
    entry = bench.manifest().entry("pytorch-bs2-c01")
    assert entry.outcome == "runtime_error"
    assert entry.message is not None and "Docker engine unreachable: connection refused" in entry.message
    assert result.report.aborted is not None and result.report.aborted.startswith(
        "pytorch-bs2-c01: Docker engine"
    )
    assert result.report.exit_code == 1


def test_a_missing_image_stops_before_anything_is_written(bench: Bench) -> None:
    bench.runtime.missing_images = ["llenergymeasure/pytorch:0.1.0"]
    with pytest.raises(PreflightFailed, match="lem images build --backend pytorch"):
        bench.launch()
    assert bench.runtime.checked == [["llenergymeasure/pytorch:0.1.0"]]
    assert not bench.results_root.exists()
    assert bench.runtime.calls == []


def test_a_bad_model_path_stops_before_anything_is_written(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, model=str(tmp_path / "no-such-model"))
    with pytest.raises(PreflightFailed, match="does not exist"):
        bench.launch()
    assert not bench.results_root.exists()


def test_orphans_of_dead_campaigns_are_cleaned_sparing_live_ones(bench: Bench) -> None:
    from lem.campaign.liveness import LiveCampaign

    with LiveCampaign(bench.root / "live", "other-campaign-1234"):
        result = bench.launch()
    assert bench.runtime.cleaned == [["other-campaign-1234"]]  # this campaign's own leftovers are orphans
    assert result.campaign_id not in bench.runtime.cleaned[0]


def test_progress_lines_show_position_eta_and_figures(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, {"config_gap_seconds": 5, "cycle_gap_seconds": 20})
    bench.runtime.default = Play(joules_per_token=0.25, tokens_per_s=40.0)
    bench.launch()
    assert bench.lines[0].startswith("no NVIDIA") is False
    assert bench.lines[:4] == [
        "campaign: 4 runs, 0 already done, 4 to run",
        "run 1/4: pytorch-bs1 cycle 1 [elapsed 0:00]",
        # 3 runs left: 3 x 10 s + gaps 5 + 20 + 5
        "done: pytorch-bs1-c01 in 0:10 — 0.25 J/token, 40 tok/s [elapsed 0:10, eta 1:00]",
        "gap: up to 5 s (config) before pytorch-bs2-c01",
    ]
    assert bench.lines[-1] == "campaign finished in 1:10"


def _executor(bench: Bench, probe_script: list[list[GpuReading]], drop_path: Path) -> CampaignExecutor:
    opened = open_campaign(
        bench.campaign, bench.expansion, bench.runs, bench.results_root, resume=False, now=bench.clock.time()
    )

    class Probe:
        def read(self) -> list[GpuReading]:
            return probe_script.pop(0) if len(probe_script) > 1 else probe_script[0]

        def close(self) -> None:
            return None

    warnings: list[str] = []
    services = Services(
        runtime=bench.runtime,
        specs=CampaignSpecs(
            campaign_id=opened.plan.campaign_id,
            images={"pytorch": "img:1"},
            results_root=bench.results_root,
            project_root=bench.root,
            timeout_s=60.0,
        ),
        clock=bench.clock,
        stop=bench.stop,
        gaps=GapWaiter(
            bench.campaign.execution, bench.clock, bench.stop, probe=Probe(), warn=warnings.append
        ),
        progress=LogProgress(bench.clock, bench.lines.append),
        page_cache=PageCacheDropper(True, warnings.append, path=drop_path, euid=lambda: 0, sync=lambda: None),
    )
    return CampaignExecutor(opened.plan, opened.manifest, services)


def test_start_temperatures_and_page_cache_drops_are_recorded(bench: Bench) -> None:
    drop = bench.root / "drop_caches"
    drop.write_text("")
    script = [[GpuReading("GPU-1", 35.0, 50.0)], *([[GpuReading("GPU-1", 40.0 + i, 55.0)] for i in range(4)])]
    report = _executor(bench, script, drop).run()
    entries = bench.manifest().entries()
    assert [e.start_temperature_c for e in entries] == [{"GPU-1": 40.0 + i} for i in range(4)]
    assert [e.page_cache_dropped for e in entries] == [True] * 4
    assert drop.read_text() == "3\n"
    assert report.exit_code == 0


def test_page_cache_is_not_dropped_without_permission(tmp_path: Path) -> None:
    warnings: list[str] = []
    dropper = PageCacheDropper(True, warnings.append, path=tmp_path / "drop", euid=lambda: 1000)
    assert dropper.drop() is False
    assert warnings == [
        "cold_start.drop_page_cache: lem runs as uid 1000, not root, so the page cache is not dropped and "
        "model loads may be served from memory (run lem as root on the host to drop it)"
    ]
    read_only = tmp_path / "ro"
    read_only.write_text("")
    read_only.chmod(0o444)
    warnings.clear()
    dropper = PageCacheDropper(True, warnings.append, path=tmp_path / "missing-dir" / "drop", euid=lambda: 0)
    assert (dropper.active, len(warnings)) == (False, 1)
    assert "is not writable here" in warnings[0]


def test_page_cache_dropping_off_by_default_says_nothing() -> None:
    warnings: list[str] = []
    assert PageCacheDropper(False, warnings.append, euid=lambda: 1000).drop() is False
    assert warnings == []


def test_manifest_lists_the_configurations(bench: Bench) -> None:
    bench.launch()
    data = json.loads((bench.campaign_dir / "manifest.json").read_text())
    assert {v["name"]: v["axis_values"] for v in data["configs"].values()} == {
        "pytorch-bs1": {"pytorch.batch_size": 1},
        "pytorch-bs2": {"pytorch.batch_size": 2},
    }
    assert data["config"]["campaign_name"] == "demo"


def test_a_fake_clock_is_never_slept_on_for_real(bench: Bench) -> None:
    assert isinstance(bench.clock, FakeClock)
    bench.launch()
    assert bench.clock.sleeps == []  # gaps 0: nothing slept at all

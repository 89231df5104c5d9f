"""A daemon campaign's results: the repetition as a run field, hour_of_day, drift flags, the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from lem.cli import main
from lem.results.summary import summarize_campaign
from lem.results.validity import repetition_drifts
from tests.unit.results.conftest import GOLDEN, read_png_size

LONDON = ZoneInfo("Europe/London")
TEMPLATE = GOLDEN / "alpha" / "pytorch-bs1-float16-c01" / "result.json"
CONFIG_ID = json.loads(TEMPLATE.read_text())["config_id"]
# repetition -> (started_at of cycle 1 (UTC), energy per token of cycles 1 and 2, idle power)
PLAN = {
    1: ("2026-06-10T01:00:00.000+00:00", (1.0, 1.2), 60.0),
    2: ("2026-06-10T13:00:00.000+00:00", (1.1, 1.1), 60.0),
    3: ("2026-06-11T01:00:00.000+00:00", (1.2, 1.4), 66.0),
}


def result(run_id: str, cycle: int, started: str, jpt: float, idle: float) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TEMPLATE.read_text())
    data.update(run_id=run_id, cycle=cycle, started_at=started, timeline_file=None)
    data["energy"]["energy_per_output_token_j"] = jpt
    data["baseline"]["idle_power_w"] = idle
    data["baseline"]["per_gpu_idle_power_w"] = dict.fromkeys(data["baseline"]["per_gpu_idle_power_w"], idle)
    return data


Plan = dict[int, tuple[str, tuple[float, float], float]]


def write_daemon_tree(root: Path, schedule: bool = True, plan: Plan | None = None) -> Path:
    campaign = root / "nightly"
    for rep, (started, jpts, idle) in (plan or PLAN).items():
        for cycle, jpt in enumerate(jpts, start=1):
            run_id = f"pytorch-bs1-float16-c{cycle:02d}"
            run_dir = campaign / f"rep-{rep:04d}" / run_id
            run_dir.mkdir(parents=True)
            (run_dir / "result.json").write_text(json.dumps(result(run_id, cycle, started, jpt, idle)))
    if schedule:
        (campaign / "schedule.json").write_text("{}")
    return campaign


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return write_daemon_tree(tmp_path)


def test_runs_of_every_repetition_pool_into_their_configuration(campaign: Path) -> None:
    summary = summarize_campaign(campaign, zone=LONDON)
    assert summary.repetitions == (1, 2, 3)
    assert sorted((r.repetition, r.cycle, r.campaign) for r in summary.records) == [
        (rep, cycle, "nightly") for rep in (1, 2, 3) for cycle in (1, 2)
    ]
    (config,) = summary.configs
    assert config.n_ok == 6
    assert config.stat("energy_per_output_token_j").mean == pytest.approx(7.0 / 6)


def test_group_by_repetition_and_hour_of_day(campaign: Path) -> None:
    by_rep = summarize_campaign(campaign, ["repetition"], zone=LONDON)
    assert [(g.key, g.n_ok, g.config_names) for g in by_rep.groups] == [
        ((("repetition", 1),), 2, ("pytorch-bs1-float16",)),
        ((("repetition", 2),), 2, ("pytorch-bs1-float16",)),
        ((("repetition", 3),), 2, ("pytorch-bs1-float16",)),
    ]
    means = [g.stat("energy_per_output_token_j").mean for g in by_rep.groups]
    assert means == pytest.approx([1.1, 1.1, 1.3])
    assert by_rep.config_group_by == () and by_rep.configs[0].group == ()
    by_hour = summarize_campaign(campaign, ["hour_of_day"], zone=LONDON)  # BST: UTC+1
    assert [(g.key, g.n_ok) for g in by_hour.groups] == [
        ((("hour_of_day", 2),), 4),
        ((("hour_of_day", 14),), 2),
    ]
    assert by_hour.groups[0].stat("energy_per_output_token_j").mean == pytest.approx(1.2)
    utc = summarize_campaign(campaign, ["hour_of_day"], zone=ZoneInfo("UTC"))
    assert [g.key for g in utc.groups] == [(("hour_of_day", 1),), (("hour_of_day", 13),)]


def test_drift_across_repetitions_is_flagged_with_its_size(campaign: Path) -> None:
    summary = summarize_campaign(campaign, zone=LONDON)
    flags = {f.code: f.message for f in summary.flags}
    assert flags["REPETITION_DRIFT_ENERGY"].startswith(
        "pytorch-bs1-float16: energy per output token moved +18.2 % from repetition 1 (1.1 J) "
        "to repetition 3 (1.3 J) (per repetition: 1: 1.1, 2: 1.1, 3: 1.3)"
    )
    assert "idle power on " in flags["REPETITION_DRIFT_BASELINE"]
    assert (
        "moved +10.0 % from repetition 1 (60.0 W) to repetition 3 (66.0 W)"
        in flags["REPETITION_DRIFT_BASELINE"]
    )
    energy, idle = repetition_drifts(summary.records)
    assert [d.change for d in energy] == pytest.approx([0.2 / 1.1])
    assert [d.change for d in idle] == pytest.approx([0.1])


def test_a_small_drift_is_not_flagged(tmp_path: Path) -> None:
    small = {**PLAN, 3: ("2026-06-11T01:00:00.000+00:00", (1.1, 1.2), 62.0)}  # +4.5 % and +3.3 %
    campaign = write_daemon_tree(tmp_path, plan=small)
    codes = {f.code for f in summarize_campaign(campaign, zone=LONDON).flags}
    assert not codes & {"REPETITION_DRIFT_ENERGY", "REPETITION_DRIFT_BASELINE"}


def test_without_schedule_json_rep_directories_are_ordinary_campaigns(tmp_path: Path) -> None:
    campaign = write_daemon_tree(tmp_path, schedule=False)
    summary = summarize_campaign(campaign, zone=LONDON)
    assert summary.repetitions == ()
    assert sorted({r.campaign for r in summary.records}) == ["rep-0001", "rep-0002", "rep-0003"]


def test_results_commands_group_by_repetition_and_plot_against_start_time(
    campaign: Path, tmp_path: Path
) -> None:
    runner = CliRunner(env={"TZ": "Europe/London"})
    summary = runner.invoke(main, ["results", "summary", str(campaign), "--group-by", "repetition", "--json"])
    assert summary.exit_code == 0, summary.output
    data = json.loads(summary.stdout)
    assert [g["group"] for g in data["groups"]] == [{"repetition": 1}, {"repetition": 2}, {"repetition": 3}]
    listed = runner.invoke(main, ["results", "list", str(campaign)])
    assert listed.exit_code == 0, listed.output
    labels = [line.split("│")[2].strip() for line in listed.stdout.splitlines() if "pytorch-bs1" in line]
    assert labels == [f"rep-{rep:04d}/pytorch-bs1-float16-c{c:02d}" for rep in (1, 2, 3) for c in (1, 2)]
    table = runner.invoke(main, ["results", "summary", str(campaign), "--group-by", "hour_of_day"])
    assert table.exit_code == 0 and "by hour_of_day" in table.stdout
    pytest.importorskip("matplotlib")
    plots = runner.invoke(main, ["results", "plot", str(campaign), "--out", str(tmp_path / "plots")])
    assert plots.exit_code == 0, plots.output
    assert read_png_size(tmp_path / "plots" / "repetitions.png") == (1000, 700)
    report = runner.invoke(
        main, ["results", "report", str(campaign), "--format", "md", "--out", str(tmp_path / "r.md")]
    )
    assert report.exit_code == 0, report.output
    text = (tmp_path / "r.md").read_text()
    assert "r_plots/repetitions.png" in text and "REPETITION_DRIFT_ENERGY" in text
    assert "| rep-0003/pytorch-bs1-float16-c02 |" in text
    assert (tmp_path / "r_plots" / "repetitions.png").is_file()


def test_an_unknown_group_by_names_the_run_fields(campaign: Path) -> None:
    out = CliRunner().invoke(main, ["results", "summary", str(campaign), "--group-by", "repetitons"])
    assert out.exit_code == 1
    assert "did you mean 'repetition'" in out.output


def test_runs_a_repetition_manifest_knows_without_a_result_are_counted_missing(campaign: Path) -> None:
    runs = [
        {"run_id": f"pytorch-bs1-float16-c{c:02d}", "config_id": CONFIG_ID, "name": "pytorch-bs1-float16",
         "backend": "pytorch", "cycle": c, "status": "done"}
        for c in (1, 2, 3)
    ]  # fmt: skip
    for rep in (1, 2):
        (campaign / f"rep-{rep:04d}" / "manifest.json").write_text(json.dumps({"runs": runs}))
    summary = summarize_campaign(campaign, zone=LONDON)
    (config,) = summary.configs
    assert (config.n_ok, config.excluded.missing) == (6, 2)  # c03 of repetitions 1 and 2

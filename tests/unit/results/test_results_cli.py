"""``lem results …`` through click's CliRunner: every command, and its error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lem.cli import main

COMMANDS = ("list", "show", "summary", "export", "plot", "report", "compare")


def _run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, ["results", *args])
    assert "Traceback" not in result.output
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_help_lists_every_command() -> None:
    out = _run("--help").output
    for command in COMMANDS:
        assert command in out
        assert _run(command, "--help").output.startswith("Usage: main results " + command)


def test_list(golden: Path) -> None:
    out = _run("list", str(golden)).output
    assert "26 runs in 3 campaign(s), 3 file(s) skipped" in out
    assert "pytorch-bs4-float16-c01" in out and "THROTTLING" in out and "OutOfMemoryError" in out
    assert "skipped" in out and "contract version 99.0.0" in out


def test_list_json(golden: Path) -> None:
    data = json.loads(_run("list", str(golden / "alpha"), "--json").output)
    assert len(data["rows"]) == 7 and data["headers"][0] == "Campaign"
    assert len(data["notes"]) == 2


def test_list_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no such file or directory" in _run("list", str(tmp_path / "nope"), ok=False).output
    assert "no result.json files found" in _run("list", str(tmp_path), ok=False).output
    monkeypatch.chdir(tmp_path)  # the default ./results does not exist here
    assert "results: no such file or directory" in _run("list", ok=False).output


def test_show_run_by_id_path_and_json(golden: Path) -> None:
    out = _run("show", "pytorch-bs4-float16-c01", "--dir", str(golden / "alpha")).output
    assert "Run pytorch-bs4-float16-c01" in out and "THROTTLING" in out and "measure: 45.00–53.00 s" in out
    by_path = _run("show", str(golden / "alpha" / "vllm-float16-c01")).output
    assert "TTFT mean (s)" in by_path and "SHORT_WINDOW" in by_path
    data = json.loads(
        _run("show", str(golden / "alpha" / "vllm-float16-c01" / "result.json"), "--json").output
    )
    assert data["run_id"] == "vllm-float16-c01" and data["energy"]["gross_energy_j"] == 1400.0


def test_show_configuration(golden: Path) -> None:
    out = _run("show", "pytorch-bs1-float16", "--dir", str(golden / "beta")).output
    assert "beta / pytorch-bs1-float16" in out and "HIGH_CV" in out and "42" in out
    data = json.loads(_run("show", "grid-bs2-float16", "--dir", str(golden), "--json").output)
    assert data["n_ok"] == 2 and data["stats"]["output_tokens_per_s"]["n"] == 2


def test_show_errors(golden: Path) -> None:
    assert (
        "no run or configuration 'nothing'" in _run("show", "nothing", "--dir", str(golden), ok=False).output
    )
    corrupt = golden / "alpha" / "vllm-float16-c03"
    assert "not valid JSON" in _run("show", str(corrupt), ok=False).output
    assert "no result.json here" in _run("show", str(golden), ok=False).output


def test_summary_table_and_flags(golden: Path) -> None:
    out = _run("summary", str(golden / "alpha")).output
    assert "Campaign alpha: 4 configurations, 6 valid runs" in out
    assert "3.203 ± 0.9927 (3.4 %)" in out and "1 missing" in out
    assert "GAP_CAP_REACHED" in out and "THROTTLING×1" in out


def test_summary_group_by_and_metric(golden: Path) -> None:
    out = _run(
        "summary",
        str(golden / "gamma"),
        "--group-by",
        "pytorch.batch_size",
        "--metric",
        "output_tokens_per_j",
    ).output
    assert "by pytorch.batch_size (runs pooled across configurations)" in out
    assert "Tokens/J (tok/J)" in out and "Energy/token (J/tok)" not in out


def test_summary_json(golden: Path) -> None:
    data = json.loads(_run("summary", str(golden / "gamma"), "--group-by", "fp_precision", "--json").output)
    assert data["group_by"] == ["fp_precision"] and len(data["groups"]) == 2
    assert data["excluded"] == {"failed": 0, "invalid": 1, "missing": 0}


def test_summary_uses_the_campaigns_group_by(golden_copy: Path) -> None:
    manifest = golden_copy / "alpha" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["config"]["group_by"] = ["backend"]
    manifest.write_text(json.dumps(data))
    out = json.loads(_run("summary", str(golden_copy / "alpha"), "--json").output)
    assert out["group_by"] == ["backend"] and [g["group"]["backend"] for g in out["groups"]] == [
        "pytorch",
        "vllm",
    ]


def test_summary_groups_by_the_batch_size_alias(golden: Path) -> None:
    out = _run("summary", str(golden / "alpha"), "--group-by", "backend,batch_size", "--json").output
    data = json.loads(out)
    assert data["group_by"] == ["backend", "batch_size"]
    assert [(g["group"]["backend"], g["group"]["batch_size"]) for g in data["groups"]] == [
        ("pytorch", 1),
        ("pytorch", 4),
        ("pytorch", None),
        ("vllm", 64),
    ]
    repeated = _run("summary", str(golden / "alpha"), "--group-by", "backend", "--group-by", "batch_size")
    assert "Campaign alpha by backend, batch_size (runs pooled across configurations)" in repeated.output


def test_a_campaign_group_by_batch_size_is_used_at_summary_time(golden_copy: Path) -> None:
    manifest = golden_copy / "alpha" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["config"]["group_by"] = ["batch_size"]
    manifest.write_text(json.dumps(data))
    out = json.loads(_run("summary", str(golden_copy / "alpha"), "--json").output)
    assert out["group_by"] == ["batch_size"]
    assert [g["group"]["batch_size"] for g in out["groups"]] == [1, 4, 64, None]


@pytest.mark.parametrize("command", ["summary", "report", "plot", "export"])
def test_an_unknown_group_by_key_in_any_command(golden: Path, tmp_path: Path, command: str) -> None:
    extra = ["--format", "csv"] if command == "export" else []
    args = [command, str(golden / "alpha"), *extra, "--out", str(tmp_path / "o"), "--group-by", "batch_sise"]
    if command == "summary":
        args.remove("--out")
        args.remove(str(tmp_path / "o"))
    out = _run(*args, ok=False).output
    assert "'batch_sise' is not a configuration field to group by; did you mean 'batch_size'?" in out
    assert not (tmp_path / "o").exists()


def test_report_and_plot_group_by_batch_size(golden: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = _run(
        "plot", str(golden / "alpha"), "--out", str(tmp_path), "--no-timelines", "--group-by", "batch_size"
    )
    assert "groups_energy_per_output_token_j.png" in out.output
    _run(
        "report",
        str(golden / "alpha"),
        "--format",
        "md",
        "--out",
        str(tmp_path / "r.md"),
        "--group-by",
        "batch_size",
    )
    assert "by batch_size" in (tmp_path / "r.md").read_text()


def test_summary_errors(golden: Path, tmp_path: Path) -> None:
    out = _run("summary", str(golden / "gamma"), "--group-by", "pytorch.batchsize", ok=False).output
    assert "did you mean 'pytorch.batch_size'" in out
    out = _run("summary", str(golden / "gamma"), "--metric", "joules", ok=False).output
    assert "unknown metric 'joules'" in out and "energy_per_output_token_j" in out
    assert "no such file or directory" in _run("summary", str(tmp_path / "x"), ok=False).output


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export(golden: Path, tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = _run("export", str(golden / "alpha"), "--format", fmt, "--out", str(tmp_path)).output
    assert f"wrote {tmp_path / f'runs.{fmt}'}" in out
    assert (tmp_path / f"configs.{fmt}").stat().st_size > 1000


def test_export_default_location_and_bad_format(golden_copy: Path) -> None:
    _run("export", str(golden_copy / "beta"), "--format", "csv")
    assert (golden_copy / "beta" / "analysis" / "runs.csv").is_file()
    result = CliRunner().invoke(main, ["results", "export", str(golden_copy / "beta"), "--format", "xlsx"])
    assert result.exit_code == 2 and "'xlsx' is not one of" in result.output


def test_plot(golden: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = _run("plot", str(golden / "alpha"), "--out", str(tmp_path), "--metric", "avg_power_w").output
    assert "tradeoff.png" in out and "bars_avg_power_w.png" in out and "timeline_" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bars_avg_power_w.png",
        "timeline_pytorch-bs1-float16-c01.png",
        "tradeoff.png",
    ]
    _run("plot", str(golden / "alpha"), "--out", str(tmp_path / "none"), "--no-timelines")
    assert not list((tmp_path / "none").glob("timeline_*"))


def test_report(golden: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _run("report", str(golden / "beta"), "--out", str(tmp_path / "beta.html"))
    assert "BASELINE_DRIFT" in (tmp_path / "beta.html").read_text()
    out = _run("report", str(golden / "beta"), "--format", "md", "--out", str(tmp_path / "beta.md")).output
    assert "beta_plots/tradeoff.png" in out
    assert "MIXED_HARDWARE" in (tmp_path / "beta.md").read_text()


def test_report_to_an_unwritable_place(golden: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = _run("report", str(golden / "beta"), "--out", str(blocker / "r.html"), ok=False).output
    assert "cannot create the output directory" in out


def test_compare_campaigns(golden: Path) -> None:
    out = _run("compare", str(golden / "alpha"), str(golden / "beta")).output
    assert "Compare A = alpha with B = beta" in out and "only in A: pytorch-bs8-float16, vllm-float16" in out
    assert "MIXED_HARDWARE" in out


def test_compare_configurations(golden: Path) -> None:
    args = (
        "compare",
        "pytorch-bs1-float16",
        "pytorch-bs4-float16",
        "--campaign",
        str(golden / "beta"),
        "--metric",
        "energy_per_output_token_j",
    )
    assert "yes: B lower" in _run(*args).output
    data = json.loads(_run(*args, "--json").output)
    (metric,) = data["pairs"][0]["metrics"]
    assert metric["verdict"] == "lower" and metric["exceeds_intervals"] is True


def test_compare_errors(golden: Path) -> None:
    out = _run("compare", str(golden / "alpha"), "pytorch-bs1-float16", ok=False).output
    assert "give two campaign directories, or two configuration names" in out
    out = _run("compare", "a", "b", "--campaign", str(golden / "alpha"), ok=False).output
    assert "no configuration 'a'" in out

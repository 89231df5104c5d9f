"""Exports: stable columns with units, one row per run and per configuration, csv/json/parquet."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from lem.results.export import (
    RUN_COLUMNS,
    ExportUnavailable,
    config_columns,
    config_rows,
    export_campaign,
    run_rows,
    summary_json,
)
from lem.results.metrics import METRIC_NAMES
from lem.results.summary import CampaignSummary

RUN_HEAD = (
    "campaign",
    "campaign_id",
    "run_id",
    "config_id",
    "config_name",
    "backend",
    "cycle",
    "status",
    "error",
    "started_at",
    "finished_at",
    "energy_source",
    "output_tokens",
    "flags",
    "gpu_names",
    "gpu_uuids",
    "driver_version",
    "cuda_version",
    "hostname",
    "harness_version",
    "image",
    "run_dir",
)


def test_run_columns_are_stable_and_carry_units() -> None:
    names = [c.name for c in RUN_COLUMNS]
    assert tuple(names[: len(RUN_HEAD)]) == RUN_HEAD
    assert tuple(names[len(RUN_HEAD) :]) == METRIC_NAMES
    assert {
        "gross_energy_j",
        "energy_per_output_token_j",
        "output_tokens_per_s",
        "avg_power_w",
        "batch_latency_p99_s",
        "ttft_mean_s",
    } <= set(METRIC_NAMES)
    configs = [c.name for c in config_columns(())]
    assert configs[:8] == [
        "campaign",
        "config_id",
        "config_name",
        "backend",
        "n_ok",
        "n_failed",
        "n_invalid",
        "n_missing",
    ]
    assert configs[8:17] == [
        f"gross_energy_j_{s}"
        for s in ("n", "mean", "std", "cv", "ci95_low", "ci95_high", "min", "max", "cycles_for_5pct")
    ]
    assert configs[-2:] == ["run_flags", "high_cv_metrics"]


def test_run_rows_list_every_run_including_skipped_and_missing(alpha: CampaignSummary) -> None:
    rows = run_rows(alpha).rows
    assert len(rows) == 7 + 2 + 1  # results, skipped files, manifest run without a result
    by_status: dict[str, list[str]] = {}
    for row in rows:
        by_status.setdefault(str(row["status"]), []).append(str(row["run_id"]))
    assert sorted(by_status["failed"]) == ["pytorch-bs4-float16-c02"]
    assert sorted(by_status["invalid"]) == ["pytorch-bs1-float16-c03", "vllm-float16-c03"]
    assert by_status["missing"] == ["pytorch-bs8-float16-c01"]
    first = next(r for r in rows if r["run_id"] == "pytorch-bs1-float16-c01")
    assert first["gross_energy_j"] == 4000.0 and first["energy_per_output_token_j"] == 3.125
    assert first["gpu_names"] == "NVIDIA A100-SXM4-80GB" and first["flags"] == ""
    throttled = next(r for r in rows if r["run_id"] == "pytorch-bs4-float16-c01")
    assert throttled["flags"] == "THROTTLING"


def test_config_rows_hold_the_statistics(alpha: CampaignSummary) -> None:
    rows = {r["config_name"]: r for r in config_rows(alpha).rows}
    bs1 = rows["pytorch-bs1-float16"]
    assert (bs1["n_ok"], bs1["n_invalid"], bs1["energy_per_output_token_j_n"]) == (2, 1, 2)
    assert bs1["energy_per_output_token_j_mean"] == 3.203125
    assert bs1["energy_per_output_token_j_min"] == 3.125
    assert bs1["ttft_mean_s_n"] == 0 and bs1["ttft_mean_s_mean"] is None
    assert rows["pytorch-bs8-float16"]["n_missing"] == 1
    assert (
        rows["vllm-float16"]["high_cv_metrics"]
        == "ttft_mean_s;ttft_p50_s;ttft_p99_s;itl_mean_s;itl_p50_s;itl_p99_s"
    )
    assert rows["pytorch-bs4-float16"]["run_flags"] == "THROTTLING=1"


def test_csv_export_round_trips_full_precision(alpha: CampaignSummary, tmp_path: Path) -> None:
    runs, configs = export_campaign(alpha, "csv", tmp_path / "out")
    assert (runs.name, configs.name) == ("runs.csv", "configs.csv")
    with runs.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == tuple(c.name for c in RUN_COLUMNS)
        rows = list(reader)
    assert len(rows) == 10
    row = next(r for r in rows if r["run_id"] == "pytorch-bs4-float16-c03")
    assert float(row["energy_per_output_token_j"]) == 290 * 8.5 / 1280
    with configs.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    bs4 = next(r for r in table if r["config_name"] == "pytorch-bs4-float16")
    assert float(bs4["gross_energy_j_mean"]) == (2400.0 + 2465.0) / 2
    assert bs4["ttft_mean_s_mean"] == ""


def test_json_export(gamma: CampaignSummary, tmp_path: Path) -> None:
    runs, configs = export_campaign(gamma, "json", tmp_path)
    run_list = json.loads(runs.read_text())
    assert len(run_list) == 13 and run_list[0]["config.fp_precision"] in ("float16", "bfloat16")
    config_list = json.loads(configs.read_text())
    assert [c["config.fp_precision"] for c in config_list] == ["bfloat16"] * 3 + ["float16"] * 3
    assert config_list[0]["output_tokens_per_s_n"] == 2


def test_parquet_export_has_typed_columns(alpha: CampaignSummary, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    runs, configs = export_campaign(alpha, "parquet", tmp_path)
    table = pq.read_table(runs)
    assert table.num_rows == 10
    assert str(table.schema.field("cycle").type) == "int64"
    assert str(table.schema.field("gross_energy_j").type) == "double"
    assert str(table.schema.field("status").type) == "string"
    stats = pq.read_table(configs).to_pylist()
    assert {r["config_name"]: r["energy_per_output_token_j_mean"] for r in stats}[
        "pytorch-bs1-float16"
    ] == 3.203125


def test_parquet_without_pyarrow_says_how_to_install(
    alpha: CampaignSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ExportUnavailable, match=r"pip install 'llenergymeasure\[parquet\]'"):
        export_campaign(alpha, "parquet", tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_format_is_rejected(alpha: CampaignSummary, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv, json, parquet"):
        export_campaign(alpha, "xlsx", tmp_path)  # type: ignore[arg-type]


def test_summary_json_document(beta: CampaignSummary) -> None:
    doc = summary_json(beta)
    json.dumps(doc, allow_nan=False)
    assert doc["excluded"] == {"failed": 0, "invalid": 1, "missing": 0}
    configs = doc["configs"]
    assert isinstance(configs, list)
    stats = configs[0]["stats"]["gross_energy_j"]
    assert stats["n"] == 3 and stats["high_cv"] is True and stats["cycles_for_5pct"] == 42
    flags = doc["flags"]
    assert isinstance(flags, list)
    assert [f["code"] for f in flags][:3] == ["BASELINE_DRIFT", "MIXED_HARDWARE", "MIXED_HARDWARE"]


def _with_metadata(root: Path, config: str, metadata: dict[str, object]) -> None:
    """Every cycle of ``config`` labelled with ``metadata`` (one config id, one configuration)."""
    for path in sorted((root / "alpha").glob(f"{config}-c0*/result.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:  # the golden tree's deliberately broken result
            continue
        data["config"]["extra_metadata"] = metadata
        path.write_text(json.dumps(data))


def test_extra_metadata_becomes_meta_columns_of_the_runs_export(golden_copy: Path) -> None:
    from lem.results.summary import summarize_campaign

    _with_metadata(golden_copy, "vllm-float16", {"team": "green", "rack": 7, "ok": True})
    _with_metadata(golden_copy, "pytorch-bs1-float16", {"team": "blue", "ratio": 0.5})
    table = run_rows(summarize_campaign(golden_copy / "alpha"))
    names = [c.name for c in table.columns]
    assert names[-4:] == ["meta.ok", "meta.rack", "meta.ratio", "meta.team"]
    assert all(c.kind == "str" for c in table.columns[-4:])
    by_run = {row["run_id"]: row for row in table.rows}
    meta = {run: tuple(by_run[run][n] for n in names[-4:]) for run in by_run}
    assert meta["vllm-float16-c01"] == ("true", "7", None, "green")
    assert meta["pytorch-bs1-float16-c02"] == (None, None, "0.5", "blue")
    assert meta["pytorch-bs4-float16-c02"] == (None, None, None, None)

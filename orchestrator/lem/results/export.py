"""Export a campaign: ``runs.<ext>`` (one row per run) and ``configs.<ext>`` (one per configuration).

Column names are stable and carry their unit (``energy_per_output_token_j``); the
statistics columns of a metric ``m`` are ``m_n``, ``m_mean``, ``m_std``, ``m_cv``
(a fraction), ``m_ci95_low``, ``m_ci95_high``, ``m_min``, ``m_max`` and
``m_cycles_for_5pct``. The runs table also lists skipped files (status ``invalid``)
and runs the manifest knows without a result (status ``missing``), so nothing is
dropped silently. Formats: csv, json, parquet (needs the optional ``pyarrow``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lem.results.fields import record_value
from lem.results.files import prepare_dir, write_bytes, write_text
from lem.results.load import LoadProblem, RunRecord
from lem.results.manifest import ManifestRun
from lem.results.metrics import METRIC_NAMES
from lem.results.stats import Stats
from lem.results.summary import CampaignSummary, ConfigSummary, Excluded

Format = Literal["csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
Kind = Literal["str", "int", "float"]
Cell = str | int | float | None
Row = dict[str, Cell]

STAT_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("n", "int"),
    ("mean", "float"),
    ("std", "float"),
    ("cv", "float"),
    ("ci95_low", "float"),
    ("ci95_high", "float"),
    ("min", "float"),
    ("max", "float"),
    ("cycles_for_5pct", "int"),
)


class ExportUnavailable(Exception):
    """The chosen format needs an optional package that is not installed."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True)
class TableRows:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


# --------------------------------------------------------------------------- runs


_RUN_FIELDS: tuple[tuple[str, Kind, Callable[[RunRecord], Cell]], ...] = (
    ("campaign", "str", lambda r: r.campaign),
    ("campaign_id", "str", lambda r: r.campaign_id),
    ("run_id", "str", lambda r: r.run_id),
    ("config_id", "str", lambda r: r.config_id),
    ("config_name", "str", lambda r: r.config_name),
    ("backend", "str", lambda r: r.backend),
    ("cycle", "int", lambda r: r.cycle),
    ("status", "str", lambda r: r.status),
    ("error", "str", lambda r: r.error),
    ("started_at", "str", lambda r: r.started_at),
    ("finished_at", "str", lambda r: r.finished_at),
    ("energy_source", "str", lambda r: r.energy_source),
    ("output_tokens", "int", lambda r: r.output_tokens),
    ("flags", "str", lambda r: ";".join(r.flags)),
    ("gpu_names", "str", lambda r: ";".join(g.name for g in r.provenance.gpus) if r.provenance else None),
    ("gpu_uuids", "str", lambda r: ";".join(r.gpu_uuids)),
    ("driver_version", "str", lambda r: r.provenance.driver_version if r.provenance else None),
    ("cuda_version", "str", lambda r: r.provenance.cuda_version if r.provenance else None),
    ("hostname", "str", lambda r: r.provenance.hostname if r.provenance else None),
    ("harness_version", "str", lambda r: r.provenance.harness_version if r.provenance else None),
    ("image", "str", lambda r: r.provenance.image if r.provenance else None),
    ("run_dir", "str", lambda r: str(r.run_dir)),
)
RUN_COLUMNS: tuple[Column, ...] = (
    *(Column(name, kind) for name, kind, _ in _RUN_FIELDS),
    *(Column(m, "float") for m in METRIC_NAMES),
)


def run_rows(summary: CampaignSummary) -> TableRows:
    """Every run: valid and failed results, skipped files, and manifest runs without a result."""
    groups = tuple(Column(f"config.{f}", "str") for f in summary.group_by)
    groups += tuple(Column(f"{META_PREFIX}{key}", "str") for key in metadata_keys(summary.records))
    rows: list[Row] = []
    for record in sorted(summary.records, key=lambda r: (r.campaign, r.cycle, r.run_id)):
        row: Row = {name: get(record) for name, _, get in _RUN_FIELDS}
        row.update({m: _finite(v) for m, v in zip(METRIC_NAMES, record.values, strict=True)})
        for field in summary.group_by:
            row[f"config.{field}"] = _text(record_value(record, field, summary.zone))
        row.update(metadata_cells(record))
        rows.append(row)
    rows += [_problem_row(p) for p in summary.problems]
    rows += _missing_rows(summary)
    return TableRows((*RUN_COLUMNS, *groups), tuple(_complete(rows, (*RUN_COLUMNS, *groups))))


META_PREFIX = "meta."  # extra_metadata keys as run columns: meta.<key>


def metadata_keys(records: Sequence[RunRecord]) -> list[str]:
    """Every ``extra_metadata`` key of the runs' configurations, sorted."""
    return sorted({key for r in records if r.config is not None for key in r.config.extra_metadata})


def metadata_cells(record: RunRecord) -> Row:
    """The run's ``extra_metadata`` as text cells (``true``/``false`` for booleans)."""
    if record.config is None:
        return {}
    return {f"{META_PREFIX}{k}": metadata_text(v) for k, v in record.config.extra_metadata.items()}


def metadata_text(value: str | int | float | bool) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _problem_row(p: LoadProblem) -> Row:
    return {
        "campaign": p.campaign,
        "run_id": p.run_id,
        "config_id": p.config_id,
        "config_name": p.config_name,
        "status": "invalid",
        "error": p.reason,
        "run_dir": str(p.path.parent),
    }


def _missing_rows(summary: CampaignSummary) -> list[Row]:
    if summary.manifest is None:
        return []
    seen = {r.run_id for r in summary.records} | {p.run_id for p in summary.problems}
    return [
        {
            "campaign": summary.manifest.path.parent.name,
            "campaign_id": summary.manifest.campaign_id,
            "run_id": run.run_id,
            "config_id": run.config_id,
            "config_name": run.config_name,
            "backend": run.backend,
            "cycle": run.cycle,
            "status": "missing",
            "error": _missing_reason(run),
        }
        for run in summary.manifest.runs
        if run.run_id not in seen
    ]


def _missing_reason(run: ManifestRun) -> str:
    return f"manifest status {run.status}, outcome {run.outcome}: {run.message or 'no result file'}"


# --------------------------------------------------------------------------- configurations


def config_columns(group_by: Sequence[str]) -> tuple[Column, ...]:
    head = [
        Column("campaign", "str"),
        Column("config_id", "str"),
        Column("config_name", "str"),
        Column("backend", "str"),
        *(Column(f"config.{f}", "str") for f in group_by),
        Column("n_ok", "int"),
        Column("n_failed", "int"),
        Column("n_invalid", "int"),
        Column("n_missing", "int"),
    ]
    stats = [Column(f"{m}_{suffix}", kind) for m in METRIC_NAMES for suffix, kind in STAT_FIELDS]
    return (*head, *stats, Column("run_flags", "str"), Column("high_cv_metrics", "str"))


def config_rows(summary: CampaignSummary) -> TableRows:
    columns = config_columns(summary.config_group_by)
    return TableRows(columns, tuple(_complete([_config_row(c) for c in summary.configs], columns)))


def _config_row(c: ConfigSummary) -> Row:
    row: Row = {
        "campaign": c.campaign,
        "config_id": c.config_id,
        "config_name": c.name,
        "backend": c.backend,
        "n_ok": c.n_ok,
        "n_failed": c.excluded.failed,
        "n_invalid": c.excluded.invalid,
        "n_missing": c.excluded.missing,
    }
    row.update({f"config.{field}": _text(value) for field, value in c.group})
    for metric in METRIC_NAMES:
        row.update(stat_cells(metric, c.stat(metric)))
    row["run_flags"] = ";".join(f"{code}={n}" for code, n in c.run_flags.items())
    row["high_cv_metrics"] = ";".join(m for m, s in c.stats.items() if s.high_cv)
    return row


def stat_cells(metric: str, s: Stats) -> Row:
    values: tuple[Cell, ...] = (
        s.n,
        s.mean,
        s.std,
        s.cv,
        s.ci_low,
        s.ci_high,
        s.min,
        s.max,
        s.cycles_for_target,
    )
    return {f"{metric}_{suffix}": _finite(v) for (suffix, _), v in zip(STAT_FIELDS, values, strict=True)}


# --------------------------------------------------------------------------- writers


def export_campaign(summary: CampaignSummary, fmt: Format, out_dir: Path) -> list[Path]:
    """Write ``runs.<fmt>`` and ``configs.<fmt>`` into ``out_dir``; returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}': choose one of {', '.join(FORMATS)}")
    writer = {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}[fmt]
    if fmt == "parquet":
        _require_pyarrow()
    prepare_dir(out_dir)
    return [
        writer(run_rows(summary), out_dir / f"runs.{fmt}"),
        writer(config_rows(summary), out_dir / f"configs.{fmt}"),
    ]


def to_csv(table: TableRows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row[c.name] is None else _csv_cell(row[c.name]) for c in table.columns])
    return buffer.getvalue()


def _csv_cell(value: Cell) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _write_csv(table: TableRows, path: Path) -> Path:
    return write_text(path, to_csv(table))


def _write_json(table: TableRows, path: Path) -> Path:
    return write_text(path, json.dumps(list(table.rows), indent=1, allow_nan=False) + "\n")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ExportUnavailable(
            "parquet export needs pyarrow, which is not installed: "
            "pip install 'llenergymeasure[parquet]' (or choose --format csv or json)"
        ) from None


def _write_parquet(table: TableRows, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    schema = pa.schema([pa.field(c.name, types[c.kind]) for c in table.columns])
    arrow = pa.Table.from_pylist(list(table.rows), schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink)
    return write_bytes(path, sink.getvalue().to_pybytes())


# --------------------------------------------------------------------------- helpers


def _complete(rows: list[Row], columns: Sequence[Column]) -> list[Row]:
    """Every row with every column, in column order (None where a row has no value)."""
    return [{c.name: row.get(c.name) for c in columns} for row in rows]


def _finite(value: Cell) -> Cell:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- JSON documents


def stats_json(s: Stats) -> dict[str, Cell | bool]:
    cells = stat_cells("x", s)
    out: dict[str, Cell | bool] = {key[2:]: value for key, value in cells.items()}
    out["high_cv"] = s.high_cv
    return out


def summary_json(summary: CampaignSummary) -> dict[str, object]:
    """The whole summary as plain JSON data (``lem results summary --json``)."""
    return {
        "campaign": summary.name,
        "campaign_dir": str(summary.campaign_dir),
        "campaign_id": summary.campaign_id,
        "group_by": list(summary.group_by),
        "n_ok": summary.n_ok,
        "excluded": _excluded_json(summary.excluded),
        "flags": [
            {"code": f.code, "scope": f.scope, "message": f.message, "subjects": list(f.subjects)}
            for f in summary.all_flags()
        ],
        "skipped_files": [{"path": str(p.path), "reason": p.reason} for p in summary.problems],
        "configs": [
            {
                "config_id": c.config_id,
                "config_name": c.name,
                "campaign": c.campaign,
                "backend": c.backend,
                "group": dict(c.group),
                "n_ok": c.n_ok,
                "excluded": _excluded_json(c.excluded),
                "run_ids": list(c.run_ids),
                "run_flags": c.run_flags,
                "stats": {m: stats_json(s) for m, s in c.stats.items()},
            }
            for c in summary.configs
        ],
        "groups": [
            {
                "group": dict(g.key),
                "config_names": list(g.config_names),
                "n_ok": g.n_ok,
                "excluded": _excluded_json(g.excluded),
                "stats": {m: stats_json(s) for m, s in g.stats.items()},
            }
            for g in summary.groups
        ],
    }


def _excluded_json(e: Excluded) -> dict[str, int]:
    return {"failed": e.failed, "invalid": e.invalid, "missing": e.missing}

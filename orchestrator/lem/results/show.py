"""What ``lem results list`` and ``lem results show`` print: the run listing and detail views."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lem.results.export import metadata_text, stats_json
from lem.results.load import LoadedResults, RunRecord, load_results, read_run_result
from lem.results.metrics import METRICS
from lem.results.summary import CampaignSummary, ConfigSummary
from lem.results.tables import TableData, format_number, format_stat, metric_header

LIST_HEADERS = (
    "Campaign",
    "Run",
    "Configuration",
    "Backend",
    "Cycle",
    "Status",
    "Energy/token (J/tok)",
    "Output throughput (tok/s)",
    "Flags",
)


def list_rows(loaded: LoadedResults) -> TableData:
    """One row per run, sorted by campaign, cycle and run id; skipped files as notes."""
    rows = tuple(
        (
            r.campaign,
            r.label,
            r.config_name,
            r.backend,
            str(r.cycle),
            r.status,
            format_number(r.value("energy_per_output_token_j")),
            format_number(r.value("output_tokens_per_s")),
            ", ".join(r.flags) if r.status == "ok" else (r.error or "no inference metrics"),
        )
        for r in sorted(loaded.records, key=lambda r: r.order)
    )
    campaigns = len({r.campaign for r in loaded.records})
    notes = tuple(f"skipped {p}" for p in loaded.problems)
    title = f"{len(loaded.records)} runs in {campaigns} campaign(s), {len(loaded.problems)} file(s) skipped"
    return TableData(title, LIST_HEADERS, rows, notes, numeric_from=4)


def runs_matching(root: Path, key: str) -> list[RunRecord]:
    """Runs whose run id, configuration name or config id (or a 4+ character prefix of it) is ``key``."""
    records = load_results(root).records
    by_run = [r for r in records if r.run_id == key]
    if by_run:
        return by_run
    return [
        r
        for r in records
        if key in (r.config_name, r.config_id) or (len(key) >= 4 and r.config_id.startswith(key))
    ]


# --------------------------------------------------------------------------- one run


def run_detail(path: Path) -> tuple[RenderableType, Any]:
    """A readable view of one ``result.json`` and the ``RunResult`` itself (raises ValueError)."""
    result = read_run_result(path)
    facts = _kv_table(
        f"Run {result.run_id}",
        [
            ("file", str(path)),
            ("campaign", result.campaign_id or "—"),
            ("configuration", result.config_name),
            ("config id", result.config_id),
            ("backend", result.backend),
            ("cycle", str(result.cycle)),
            ("status", result.status),
            ("error", f"{result.error.type}: {result.error.message}" if result.error else "—"),
            ("started", result.started_at),
            ("finished", result.finished_at),
            ("energy source", result.energy.energy_source if result.energy else "—"),
            ("outputs", result.outputs_file or "—"),
            *(
                (f"metadata {key}", metadata_text(value))
                for key, value in (result.config.extra_metadata.items() if result.config else ())
            ),
        ],
    )
    values = _kv_table(
        "Metrics",
        [
            (metric_header(m.name), format_number(m.extract(result)))
            for m in METRICS
            if m.extract(result) is not None
        ],
    )
    flags = [f"{f.code}: {f.message}" for f in result.flags] + [f"warning: {w}" for w in result.warnings]
    phases = [f"{p.name}: {p.start_s:.2f}–{p.end_s:.2f} s" for p in result.phases]
    prov = result.provenance
    gpus = (
        [f"{g.name} {g.uuid} (driver {g.driver_version or prov.driver_version})" for g in prov.gpus]
        if prov
        else []
    )
    parts: list[RenderableType] = [facts, values]
    parts += [
        _list_block("Flags and warnings", flags),
        _list_block("Phases", phases),
        _list_block("GPUs", gpus),
    ]
    return Group(*parts), result


def _kv_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(Text(key), Text(value))
    return table


def _list_block(title: str, lines: Sequence[str]) -> Text:
    body = "\n".join(f"  {line}" for line in lines) if lines else "  none"
    return Text(f"{title}:\n{body}")


# --------------------------------------------------------------------------- one configuration


def config_detail(summary: CampaignSummary, config: ConfigSummary, as_json: bool) -> Any:
    """Every metric's statistics, the runs and the flags of one configuration."""
    if as_json:
        return {
            "campaign": summary.name,
            "config_id": config.config_id,
            "config_name": config.name,
            "backend": config.backend,
            "n_ok": config.n_ok,
            "excluded": config.excluded.describe(),
            "run_ids": list(config.run_ids),
            "run_flags": config.run_flags,
            "flags": [str(f) for f in config.flags],
            "stats": {m: stats_json(s) for m, s in config.stats.items()},
        }
    table = Table(
        title=f"{summary.name} / {config.name} ({config.config_id}, {config.backend})", title_justify="left"
    )
    for header in ("Metric", "n", "mean ± 95 % CI (CV)", "std", "min", "max", "cycles for ±5 %"):
        table.add_column(header, justify="left" if header == "Metric" else "right")
    for metric in METRICS:
        s = config.stat(metric.name)
        if s.n:
            table.add_row(
                metric_header(metric.name),
                str(s.n),
                format_stat(s, metric.non_negative),
                format_number(s.std),
                format_number(s.min),
                format_number(s.max),
                _cycles(s.cycles_for_target),
            )
    runs = _list_block("Runs in the statistics", list(config.run_ids))
    excluded = Text(f"Excluded: {config.excluded.describe()}")
    flags = _list_block(
        "Flags", [f"{k} on {n} run(s)" for k, n in config.run_flags.items()] + [str(f) for f in config.flags]
    )
    return Group(table, runs, excluded, flags)


def _cycles(n: int | None) -> str:
    return "—" if n is None else str(n)

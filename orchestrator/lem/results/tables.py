"""Summary tables: one table model, rendered as a rich Table, plain text or Markdown.

A statistics cell reads ``mean ± h (CV %)`` where h is the half-width of the Student-t
95 % interval; ``!`` marks a CV above 10 %. Every rendering carries the validity flags
(campaign, configuration and run level) and the count of skipped files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lem.results.compare import Comparison, MetricComparison
from lem.results.metrics import BY_NAME, resolve_metrics
from lem.results.stats import Stats
from lem.results.summary import CampaignSummary, ConfigSummary, Excluded, GroupSummary

LEGEND = "cells: mean ± half-width of the Student-t 95 % interval (CV); ! = CV > 10 %; n = valid runs"
DASH = "—"
TEXT_HEADERS = frozenset({"Flags", "Flags / error"})


@dataclass(frozen=True)
class TableData:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]  # validity flags, skipped files, legend
    numeric_from: int  # first column that holds numbers (right-aligned) ...

    def numeric(self, index: int) -> bool:
        """... except the trailing text columns (flags, errors)."""
        return index >= self.numeric_from and self.headers[index] not in TEXT_HEADERS


# --------------------------------------------------------------------------- formatting


def format_number(value: float | None) -> str:
    if value is None:
        return DASH
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e6:
        return f"{value:.4g}"
    return f"{value:.3e}"


def format_stat(s: Stats) -> str:
    if s.n == 0 or s.mean is None:
        return DASH
    if s.n == 1:
        return f"{format_number(s.mean)} (n=1)"
    cv = f"{s.cv * 100:.1f} %{'!' if s.high_cv else ''}" if s.cv is not None else "CV —"
    return f"{format_number(s.mean)} ± {format_number(s.ci_half_width)} ({cv})"


def metric_header(name: str) -> str:
    metric = BY_NAME[name]
    return f"{metric.label} ({metric.unit})"


def _value(value: object) -> str:
    return DASH if value is None else str(value)


def _excluded(e: Excluded) -> str:
    return "" if e.total == 0 else e.describe()


def _flags(config: ConfigSummary) -> str:
    parts = [f"{code}×{n}" for code, n in config.run_flags.items()]
    parts += sorted({f.code for f in config.flags})
    return ", ".join(parts)


# --------------------------------------------------------------------------- table models


def config_table_data(summary: CampaignSummary, metrics: Sequence[str] | None = None) -> TableData:
    names = resolve_metrics(list(metrics) if metrics else None)
    headers = (
        "Configuration",
        *summary.config_group_by,
        "Backend",
        "n",
        "Excluded",
        *(metric_header(m) for m in names),
        "Flags",
    )
    several = len({c.campaign for c in summary.configs}) > 1
    rows = tuple(
        (
            f"{c.campaign}/{c.name}" if several else c.name,
            *(_value(v) for _, v in c.group),
            c.backend,
            str(c.n_ok),
            _excluded(c.excluded),
            *(format_stat(c.stat(m)) for m in names),
            _flags(c),
        )
        for c in summary.configs
    )
    return TableData(
        title=f"Campaign {summary.name}: {len(summary.configs)} configurations, {summary.n_ok} valid runs",
        headers=headers,
        rows=rows,
        notes=summary_notes(summary),
        numeric_from=3 + len(summary.config_group_by),
    )


def group_table_data(summary: CampaignSummary, metrics: Sequence[str] | None = None) -> TableData:
    names = resolve_metrics(list(metrics) if metrics else None)
    headers = (*summary.group_by, "Configs", "n", "Excluded", *(metric_header(m) for m in names))
    rows = tuple(_group_row(g, names) for g in summary.groups)
    return TableData(
        title=f"Campaign {summary.name} by {', '.join(summary.group_by)} (runs pooled across configurations)",
        headers=headers,
        rows=rows,
        notes=(LEGEND,),
        numeric_from=len(summary.group_by) + 1,
    )


def _group_row(g: GroupSummary, names: Sequence[str]) -> tuple[str, ...]:
    return (
        *(_value(v) for _, v in g.key),
        str(len(g.config_names)),
        str(g.n_ok),
        _excluded(g.excluded),
        *(format_stat(g.stat(m)) for m in names),
    )


def summary_notes(summary: CampaignSummary) -> tuple[str, ...]:
    notes = [f"[{f.scope}] {f}" for f in summary.all_flags()]
    if summary.excluded.total:
        notes.append(f"excluded from the statistics: {summary.excluded.describe()}")
    notes += [f"skipped {p}" for p in summary.problems]
    if summary.manifest is not None:
        notes += list(summary.manifest.notes)
    notes.append(LEGEND)
    return tuple(notes)


# --------------------------------------------------------------------------- renderers


def summary_table(summary: CampaignSummary, metrics: Sequence[str] | None = None) -> Table:
    """The per-configuration table (the campaign command prints it at the end of a campaign)."""
    return rich_table(config_table_data(summary, metrics))


def group_table(summary: CampaignSummary, metrics: Sequence[str] | None = None) -> Table:
    return rich_table(group_table_data(summary, metrics))


def rich_table(data: TableData) -> Table:
    caption = "\n".join(data.notes)
    table = Table(title=data.title, caption=caption, caption_justify="left", show_lines=False)
    for i, header in enumerate(data.headers):
        table.add_column(
            header,
            justify="right" if data.numeric(i) else "left",
            overflow="fold",
        )
    for row in data.rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def render_text(data: TableData, width: int = 200) -> str:
    """Plain text (no colour, no markup) of a table and its notes."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, force_terminal=False, highlight=False)
    console.print(rich_table(data))
    return buffer.getvalue()


def render_markdown(data: TableData) -> str:
    """A GitHub-flavoured Markdown table, then the notes as a list."""
    lines = [f"**{_md(data.title)}**", ""]
    lines.append("| " + " | ".join(_md(h) for h in data.headers) + " |")
    lines.append("|" + "|".join("---:" if data.numeric(i) else "---" for i in range(len(data.headers))) + "|")
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in data.rows]
    lines.append("")
    lines += [f"- {_md(note)}" for note in data.notes]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- comparisons


def comparison_table_data(comparison: Comparison) -> TableData:
    a, b = comparison.a_label, comparison.b_label
    headers = (
        "Configuration",
        "Metric",
        f"A: {a}",
        f"B: {b}",
        "B/A",
        "B − A (Welch 95 % CI)",
        "Beyond intervals",
    )
    rows = tuple(
        (
            _pair_name(pair.a.name, pair.b.name),
            metric_header(m.metric),
            format_stat(m.a),
            format_stat(m.b),
            DASH if m.ratio is None else f"{m.ratio:.3f}",
            _difference(m),
            _beyond(m),
        )
        for pair in comparison.pairs
        for m in pair.metrics
    )
    notes = [f"[{f.scope}] {f}" for f in comparison.flags]
    notes += [f"only in A: {', '.join(comparison.only_a)}"] if comparison.only_a else []
    notes += [f"only in B: {', '.join(comparison.only_b)}"] if comparison.only_b else []
    notes.append("Beyond intervals: the two 95 % intervals do not overlap (B higher or lower than A)")
    return TableData(f"Compare A = {a} with B = {b}", headers, rows, tuple(notes), numeric_from=2)


def _pair_name(a: str, b: str) -> str:
    return a if a == b else f"{a} vs {b}"


def _difference(m: MetricComparison) -> str:
    if m.difference is None:
        return DASH
    if m.welch_low is None or m.welch_high is None:
        return format_number(m.difference)
    return f"{format_number(m.difference)} [{format_number(m.welch_low)}, {format_number(m.welch_high)}]"


def _beyond(m: MetricComparison) -> str:
    return {"higher": "yes: B higher", "lower": "yes: B lower", "within intervals": "no"}.get(m.verdict, DASH)

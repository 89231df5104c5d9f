"""A campaign report: one self-contained HTML file (opens offline) or Markdown.

The HTML file embeds everything: styles inline, plots as base64 PNG ``data:`` URIs, no
script and no external reference. It holds the validity flags, the summary table(s),
the plots, every run, the provenance of the measurements and a methodology paragraph.
The Markdown report has the same text and tables; its plots are PNG files written
beside it and linked relatively. Without matplotlib both are written without plots,
and say so.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import lem
from lem.results.files import prepare_dir, write_bytes, write_text
from lem.results.load import ProvenanceInfo
from lem.results.plots import (
    BAR_METRICS,
    PlotsUnavailable,
    bars_png,
    group_bars_png,
    repetitions_png,
    timeline_png,
    timeline_records,
    tradeoff_png,
)
from lem.results.summary import CampaignSummary
from lem.results.tables import (
    TableData,
    config_table_data,
    format_number,
    group_table_data,
    render_markdown,
)
from lem.results.timeline import TimelineError

ReportFormat = Literal["html", "md"]
MAX_REPORT_TIMELINES = 6


@dataclass(frozen=True)
class Figure:
    name: str  # file stem
    caption: str
    png: bytes


@dataclass(frozen=True)
class ReportParts:
    summary: CampaignSummary
    tables: tuple[TableData, ...]
    runs: TableData
    provenance: TableData
    figures: tuple[Figure, ...]
    plot_note: str | None  # why there are no (or fewer) plots
    generated_at: str


def build_parts(
    summary: CampaignSummary,
    metrics: Sequence[str] | None = None,
    generated_at: str | None = None,
    max_timelines: int = MAX_REPORT_TIMELINES,
) -> ReportParts:
    tables = [config_table_data(summary, metrics)]
    if summary.groups:
        tables.append(group_table_data(summary, metrics))
    figures, note = _figures(summary, max_timelines)
    return ReportParts(
        summary=summary,
        tables=tuple(tables),
        runs=runs_table_data(summary),
        provenance=provenance_table_data(summary),
        figures=figures,
        plot_note=note,
        generated_at=generated_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _figures(summary: CampaignSummary, max_timelines: int) -> tuple[tuple[Figure, ...], str | None]:
    try:
        figures = [
            Figure(
                "tradeoff",
                "Energy per output token against output throughput, mean ± 95 % CI",
                tradeoff_png(summary),
            )
        ]
    except PlotsUnavailable as exc:
        return (), f"no plots: {exc}"
    if summary.repetitions:
        figures.append(
            Figure(
                "repetitions",
                "Energy per output token and throughput against repetition start time, mean ± 95 % CI",
                repetitions_png(summary),
            )
        )
    for metric in BAR_METRICS:
        figures.append(
            Figure(f"bars_{metric}", f"{metric} per configuration, mean ± 95 % CI", bars_png(summary, metric))
        )
        if summary.groups:
            figures.append(
                Figure(
                    f"groups_{metric}", f"{metric} per group, mean ± 95 % CI", group_bars_png(summary, metric)
                )
            )
    notes = []
    for record in timeline_records(summary, max_timelines):
        try:
            figures.append(
                Figure(
                    f"timeline_{record.run_id}",
                    f"Power timeline of run {record.run_id}",
                    timeline_png(record),
                )
            )
        except TimelineError as exc:
            notes.append(str(exc))
    return tuple(figures), "; ".join(notes) or None


# --------------------------------------------------------------------------- tables


def runs_table_data(summary: CampaignSummary) -> TableData:
    headers = (
        "Run",
        "Configuration",
        "Cycle",
        "Status",
        "Energy/token (J/tok)",
        "Output throughput (tok/s)",
        "Avg power (W)",
        "Idle power (W)",
        "Flags / error",
    )
    rows: list[tuple[str, ...]] = [
        (
            r.label,
            r.config_name,
            str(r.cycle),
            r.status,
            _num(r.value("energy_per_output_token_j")),
            _num(r.value("output_tokens_per_s")),
            _num(r.value("avg_power_w")),
            _num(r.idle_power_w),
            ", ".join(r.flags) if r.status == "ok" else (r.error or "no inference metrics"),
        )
        for r in sorted(summary.records, key=lambda r: (r.repetition or 0, r.cycle, r.config_name, r.run_id))
    ]
    rows += [
        (
            p.run_id or "?",
            p.config_name or "?",
            "",
            "skipped",
            "",
            "",
            "",
            "",
            f"{p.path.parent.name}/{p.path.name}: {p.reason}",
        )
        for p in summary.problems
    ]
    return TableData("Runs", headers, tuple(rows), (), numeric_from=2)


def provenance_table_data(summary: CampaignSummary) -> TableData:
    seen = Counter(r.provenance for r in summary.records if r.provenance is not None)
    headers = ("Runs", "Host", "GPUs", "Driver", "CUDA", "Harness", "Python", "Image", "Packages", "Device")
    rows = tuple(_provenance_row(info, n) for info, n in seen.most_common())
    return TableData("Provenance", headers, rows, (), numeric_from=99)


def _provenance_row(info: ProvenanceInfo, n: int) -> tuple[str, ...]:
    gpus = "; ".join(
        f"{g.name} ({g.uuid}{f', {g.power_limit_w:.0f} W limit' if g.power_limit_w else ''})"
        for g in info.gpus
    )
    packages = ", ".join(f"{k} {v}" for k, v in info.packages)
    return (
        str(n),
        info.hostname,
        gpus or "none",
        info.driver_version or "—",
        info.cuda_version or "—",
        info.harness_version,
        info.python_version,
        info.image or "—",
        packages or "—",
        info.device_kind,
    )


def _num(value: float | None) -> str:
    return format_number(value)


# --------------------------------------------------------------------------- methodology


def methodology(summary: CampaignSummary) -> str:
    cycles = max((r.cycle for r in summary.records), default=0)
    sources = sorted({r.energy_source for r in summary.records if r.energy_source})
    return (
        "Each configuration ran in its own container, once per cycle "
        f"({cycles} cycle(s) in this campaign), with the model and workload held constant. "
        "GPU energy is read from the NVML total-energy counter at the edges of the measured "
        "inference window (after a device synchronise); a power timeline sampled beside it gives "
        "the integral used as a cross-check, and as the headline where no counter exists. "
        f"Energy sources in these results: {', '.join(sources) or 'none'}. "
        "Idle power is the median GPU power over an idle baseline taken before the model loads; "
        "idle-adjusted energy is gross energy − idle power × window duration, over the measured "
        "window only (not load, build or warmup). Energy per token divides by the output tokens the "
        "engine produced (counted from token ids). Warmup ran until the latency coefficient of "
        "variation settled or a fixed count was reached. Across cycles, each metric is given as the "
        "mean with the Student-t 95 % confidence interval mean ± t(0.975, n−1)·s/√n, where s is the "
        "sample standard deviation; a coefficient of variation above 10 % is flagged with the number "
        "of cycles a ±5 % interval would need. Failed runs, invalid or unreadable result files and "
        "runs that left no result are excluded from the statistics and counted. Runs flagged by the "
        "harness (short window, throttling, energy discrepancy, low sample coverage, stale baseline) "
        "are kept and their flags listed."
    )


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px 32px;color:#1b1b1b;
background:#ffffff;font-size:14px;line-height:1.45}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #1f3a5f}
.meta{color:#555}
table{border-collapse:collapse;margin:8px 0 4px;font-size:12.5px}
th{background:#1f3a5f;color:#ffffff;text-align:left;padding:6px 8px;font-weight:600}
td{padding:4px 8px;border-bottom:1px solid #d8dde6;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:nth-child(even) td{background:#f4f6fa}
ul.flags li{margin:2px 0}.scope{display:inline-block;min-width:72px;font-weight:600;color:#8a4b00}
ul.notes{color:#444;font-size:12px}
figure{margin:12px 0 20px}figcaption{color:#555;font-size:12px}img{max-width:100%;border:1px solid #d8dde6}
p.method{max-width:980px}
"""


def render_html(parts: ReportParts) -> str:
    s = parts.summary
    body = [
        f"<h1>LLenergyMeasure report: {_e(s.name)}</h1>",
        f'<p class="meta">{_e(_meta_line(parts))}</p>',
        '<section id="validity"><h2>Validity flags</h2>',
        _flags_html(s),
        "</section>",
        '<section id="summary"><h2>Summary across cycles</h2>',
        *(_table_html(t, "summary") for t in parts.tables),
        "</section>",
        '<section id="plots"><h2>Plots</h2>',
        _figures_html(parts),
        "</section>",
        '<section id="runs"><h2>Runs</h2>',
        _table_html(parts.runs, "runs"),
        "</section>",
        '<section id="provenance"><h2>Provenance</h2>',
        _table_html(parts.provenance, "provenance"),
        "</section>",
        f'<section id="methodology"><h2>Methodology</h2><p class="method">{_e(methodology(s))}</p></section>',
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>LLenergyMeasure report: {_e(s.name)}</title>"
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _meta_line(parts: ReportParts) -> str:
    s = parts.summary
    return (
        f"Campaign directory {s.campaign_dir} · campaign id {s.campaign_id or '—'} · "
        f"{s.n_ok} valid runs in {len(s.configs)} configurations · excluded: {s.excluded.describe()} · "
        f"generated {parts.generated_at} by lem {lem.__version__}"
    )


def _flags_html(s: CampaignSummary) -> str:
    flags = s.all_flags()
    if not flags:
        return "<p>No validity flags.</p>"
    items = "".join(
        f'<li><span class="scope">{_e(f.scope)}</span> <b>{_e(f.code)}</b>: {_e(f.message)}</li>'
        for f in flags
    )
    return f'<ul class="flags">{items}</ul>'


def _table_html(data: TableData, css: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in data.headers)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if data.numeric(i) else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in data.rows
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in data.notes)
    title = f"<p><b>{_e(data.title)}</b></p>" if data.title not in ("Runs", "Provenance") else ""
    return f'{title}<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>' + (
        f'<ul class="notes">{notes}</ul>' if notes else ""
    )


def _figures_html(parts: ReportParts) -> str:
    out = [
        f'<figure><img alt="{_e(f.caption)}" src="data:image/png;base64,{base64.b64encode(f.png).decode()}">'
        f"<figcaption>{_e(f.caption)}</figcaption></figure>"
        for f in parts.figures
    ]
    if parts.plot_note:
        out.append(f'<p class="meta">{_e(parts.plot_note)}</p>')
    return "\n".join(out)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# --------------------------------------------------------------------------- Markdown


def render_markdown_report(parts: ReportParts, image_dir: str | None = None) -> str:
    """Markdown; figures are linked as ``<image_dir>/<name>.png`` when ``image_dir`` is given."""
    s = parts.summary
    lines = [f"# LLenergyMeasure report: {s.name}", "", _meta_line(parts), "", "## Validity flags", ""]
    lines += [f"- **{f.code}** ({f.scope}): {f.message}" for f in s.all_flags()] or ["No validity flags."]
    lines += ["", "## Summary across cycles", ""]
    lines += [render_markdown(t) for t in parts.tables]
    if parts.figures and image_dir is not None:
        lines += ["## Plots", ""]
        lines += [f"![{f.caption}]({image_dir}/{f.name}.png)\n" for f in parts.figures]
    if parts.plot_note:
        lines += [f"_{parts.plot_note}_", ""]
    lines += [
        "## Runs",
        "",
        render_markdown(parts.runs),
        "## Provenance",
        "",
        render_markdown(parts.provenance),
    ]
    lines += ["## Methodology", "", methodology(s), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- writing


def write_report(
    summary: CampaignSummary,
    out: Path,
    fmt: ReportFormat = "html",
    metrics: Sequence[str] | None = None,
    generated_at: str | None = None,
) -> list[Path]:
    """Write ``out`` (the report file); for Markdown also its PNGs in ``<stem>_plots/``."""
    parts = build_parts(summary, metrics, generated_at)
    prepare_dir(out.parent)
    if fmt == "html":
        return [write_text(out, render_html(parts))]
    image_dir = f"{out.stem}_plots"
    written = [write_text(out, render_markdown_report(parts, image_dir if parts.figures else None))]
    if parts.figures:
        prepare_dir(out.parent / image_dir)
        written += [write_bytes(out.parent / image_dir / f"{f.name}.png", f.png) for f in parts.figures]
    return written

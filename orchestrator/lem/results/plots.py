"""PNG plots with matplotlib's Agg canvas (an optional extra: ``pip install 'llenergymeasure[plots]'``).

- ``tradeoff.png``: energy per output token against output throughput, one point per
  configuration, 95 % interval error bars on both axes.
- ``bars_<metric>.png``: one bar per configuration (coloured by group) with interval
  error bars; with group_by also ``groups_<metric>.png``, one bar per group.
- ``repetitions.png`` (daemon campaigns): energy per output token and throughput against the
  start time of each repetition, one line per configuration, 95 % interval bars over the
  repetition's runs.
- ``timeline_<run_id>.png``: a run's power per GPU from ``timeline.csv``, the phases
  (baseline, load, build, warmup, measure) shaded, throttle events marked, idle level drawn.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state), so their pixel size is
``figsize x DPI`` exactly.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lem.results.fields import start_time
from lem.results.files import prepare_dir, write_bytes
from lem.results.load import RunRecord
from lem.results.metrics import BY_NAME
from lem.results.stats import Stats, describe
from lem.results.summary import CampaignSummary, ConfigSummary
from lem.results.timeline import THROTTLE_MASK, TimelineError, read_timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
TRADEOFF_SIZE_IN = (9.0, 6.0)
TIMELINE_SIZE_IN = (10.0, 4.5)
REPETITIONS_SIZE_IN = (10.0, 7.0)
BAR_HEIGHT_IN = 5.0
ENERGY_METRIC = "energy_per_output_token_j"
THROUGHPUT_METRIC = "output_tokens_per_s"
BAR_METRICS: tuple[str, ...] = ("energy_per_output_token_j", "output_tokens_per_s")
PHASE_COLOURS = {
    "baseline": "#9e9e9e",
    "load": "#d7b98e",
    "build": "#e39b5c",
    "warmup": "#f2d15f",
    "measure": "#8fd18f",
}


class PlotsUnavailable(Exception):
    """matplotlib is not installed."""


@dataclass
class PlotSet:
    files: list[Path]
    notes: list[str]  # timelines that could not be drawn, and why


def _figure(size_in: tuple[float, float]) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable(
            "plots need matplotlib, which is not installed: pip install 'llenergymeasure[plots]'"
        ) from None
    fig = Figure(figsize=size_in, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def require_matplotlib() -> None:
    _figure((1.0, 1.0))


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _half(s: Stats) -> float:
    return s.ci_half_width or 0.0


def _axis_label(metric: str) -> str:
    m = BY_NAME[metric]
    return f"{m.label} ({m.unit})"


def _group_label(c: ConfigSummary) -> str:
    if c.group:
        return ", ".join(f"{k}={v}" for k, v in c.group)
    return c.backend


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(dict.fromkeys(labels))}


# --------------------------------------------------------------------------- trade-off


def tradeoff_png(summary: CampaignSummary) -> bytes:
    """J per output token (y) against output tokens/s (x), 95 % interval error bars."""
    fig = _figure(TRADEOFF_SIZE_IN)
    ax = fig.add_subplot()
    points = [
        c
        for c in summary.configs
        if c.stat(ENERGY_METRIC).mean is not None and c.stat(THROUGHPUT_METRIC).mean is not None
    ]
    colours = _colours([_group_label(c) for c in points])
    labelled: set[str] = set()
    for c in points:
        x, y = c.stat(THROUGHPUT_METRIC), c.stat(ENERGY_METRIC)
        group = _group_label(c)
        ax.errorbar(
            x.mean or 0.0,
            y.mean or 0.0,
            xerr=_half(x),
            yerr=_half(y),
            fmt="o",
            capsize=4,
            color=colours[group],
            label=None if group in labelled else group,
        )
        labelled.add(group)
        ax.annotate(
            c.name, (x.mean or 0.0, y.mean or 0.0), textcoords="offset points", xytext=(6, 6), fontsize=8
        )
    ax.set_xlabel(_axis_label(THROUGHPUT_METRIC))
    ax.set_ylabel(_axis_label(ENERGY_METRIC))
    ax.set_title(f"{summary.name}: energy per token vs throughput (mean ± 95 % CI)")
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no configuration has both metrics", ha="center", transform=ax.transAxes)
    return _png(fig)


# --------------------------------------------------------------------------- repetitions


@dataclass(frozen=True)
class RepetitionPoint:
    config: str
    repetition: int
    start: datetime  # the earliest start of the repetition's runs of this configuration, local time
    stats: Stats


def repetition_points(summary: CampaignSummary, metric: str) -> list[RepetitionPoint]:
    """Per configuration and repetition: the metric over its valid runs, placed at their first start."""
    runs: dict[tuple[str, int], list[RunRecord]] = defaultdict(list)
    for r in summary.records:
        if r.repetition is not None and r.status == "ok":
            runs[(r.config_name, r.repetition)].append(r)
    points = []
    for (config, repetition), group in sorted(runs.items()):
        values = [v for v in (r.value(metric) for r in group) if v is not None]
        start = min(start_time(r, summary.zone) for r in group)
        points.append(RepetitionPoint(config, repetition, start, describe(values)))
    return points


def repetitions_png(summary: CampaignSummary) -> bytes:
    """Energy per token (top) and throughput (bottom) against repetition start time, mean ± 95 % CI."""
    fig = _figure(REPETITIONS_SIZE_IN)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, metric in zip(axes, (ENERGY_METRIC, THROUGHPUT_METRIC), strict=True):
        points = repetition_points(summary, metric)
        colours = _colours([p.config for p in points])
        for config, colour in colours.items():
            mine = [p for p in points if p.config == config and p.stats.mean is not None]
            ax.errorbar(
                [p.start for p in mine],
                [p.stats.mean or 0.0 for p in mine],
                yerr=[_half(p.stats) for p in mine],
                fmt="o-",
                capsize=4,
                color=colour,
                label=config,
            )
            for p in mine:
                ax.annotate(f"r{p.repetition}", (p.start, p.stats.mean or 0.0), textcoords="offset points",
                            xytext=(4, 6), fontsize=7)  # fmt: skip
        ax.set_ylabel(_axis_label(metric))
        ax.grid(True, alpha=0.3)
        if points:
            ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(f"repetition start ({datetime.now(summary.zone).strftime('%Z')} local time)")
    fig.autofmt_xdate()
    axes[0].set_title(f"{summary.name}: per repetition (mean ± 95 % CI over its runs)")
    return _png(fig)


# --------------------------------------------------------------------------- bars


def bars_png(summary: CampaignSummary, metric: str) -> bytes:
    """One bar per configuration with its 95 % interval; colour = group (or backend)."""
    configs = list(summary.configs)
    fig = _figure((max(6.0, 0.7 * len(configs) + 2.5), BAR_HEIGHT_IN))
    ax = fig.add_subplot()
    labels = [_group_label(c) for c in configs]
    colours = _colours(labels)
    stats = [c.stat(metric) for c in configs]
    ax.bar(
        range(len(configs)),
        [s.mean or 0.0 for s in stats],
        yerr=[_half(s) for s in stats],
        capsize=4,
        color=[colours[label] for label in labels],
    )
    for i, s in enumerate(stats):
        if s.mean is None:
            ax.text(i, 0, "no valid runs", rotation=90, ha="center", va="bottom", fontsize=8, color="#555555")
    ax.set_xticks(range(len(configs)), [c.name for c in configs], rotation=35, ha="right", fontsize=8)
    _bar_decor(ax, summary, metric, "per configuration", colours)
    return _png(fig)


def group_bars_png(summary: CampaignSummary, metric: str) -> bytes:
    """One bar per group_by group (runs pooled) with its 95 % interval."""
    groups = list(summary.groups)
    fig = _figure((max(6.0, 0.9 * len(groups) + 2.5), BAR_HEIGHT_IN))
    ax = fig.add_subplot()
    names = [", ".join(f"{k}={v}" for k, v in g.key) for g in groups]
    stats = [g.stat(metric) for g in groups]
    colours = _colours(names)
    ax.bar(
        range(len(groups)),
        [s.mean or 0.0 for s in stats],
        yerr=[_half(s) for s in stats],
        capsize=4,
        color=[colours[n] for n in names],
    )
    ax.set_xticks(range(len(groups)), names, rotation=25, ha="right", fontsize=8)
    _bar_decor(ax, summary, metric, f"by {', '.join(summary.group_by)}", {})
    return _png(fig)


def _bar_decor(ax: Axes, summary: CampaignSummary, metric: str, what: str, colours: dict[str, Any]) -> None:
    from matplotlib.patches import Patch

    ax.set_ylabel(_axis_label(metric))
    ax.set_title(f"{summary.name}: {BY_NAME[metric].label} {what} (mean ± 95 % CI)")
    ax.grid(True, axis="y", alpha=0.3)
    if len(colours) > 1:
        ax.legend(handles=[Patch(color=c, label=label) for label, c in colours.items()], fontsize=8)


# --------------------------------------------------------------------------- timeline


def timeline_png(record: RunRecord) -> bytes:
    """Power per GPU over the run, phases shaded, throttle events marked, idle level drawn."""
    if record.timeline_file is None:
        raise TimelineError(f"{record.run_id}: no timeline.csv")
    timeline = read_timeline(record.timeline_file)
    fig = _figure(TIMELINE_SIZE_IN)
    ax = fig.add_subplot()
    for phase in record.phases:
        ax.axvspan(phase.start_s, phase.end_s, color=PHASE_COLOURS[phase.name], alpha=0.35, label=phase.name)
    idle = dict(record.per_gpu_idle_power_w)
    for uuid, series in timeline.by_gpu().items():
        line = ax.plot(series.t_s, series.power_w, linewidth=1.2, label=f"power {uuid[-8:]}")[0]
        level = idle.get(uuid, record.idle_power_w if len(timeline.gpus) == 1 else None)
        if level is not None:
            ax.axhline(
                level, linestyle="--", linewidth=1, color=line.get_color(), label=f"idle {level:.0f} W"
            )
        events = [
            (t, p)
            for t, p, mask in zip(series.t_s, series.power_w, series.throttle, strict=True)
            if mask & THROTTLE_MASK
        ]
        if events:
            ax.scatter(
                [t for t, _ in events],
                [p for _, p in events],
                marker="v",
                color="#d62728",
                zorder=3,
                label="throttled",
            )
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("GPU power (W)")
    ax.set_title(f"{record.run_id}: power timeline")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncols=3)
    return _png(fig)


# --------------------------------------------------------------------------- all plots


def plot_campaign(
    summary: CampaignSummary,
    out_dir: Path,
    metrics: Sequence[str] = BAR_METRICS,
    timelines: bool = True,
    max_timelines: int | None = None,
) -> PlotSet:
    """Write every plot of a campaign into ``out_dir``."""
    require_matplotlib()
    prepare_dir(out_dir)
    result = PlotSet([write_bytes(out_dir / "tradeoff.png", tradeoff_png(summary))], [])
    if summary.repetitions:
        result.files.append(write_bytes(out_dir / "repetitions.png", repetitions_png(summary)))
    for metric in metrics:
        result.files.append(write_bytes(out_dir / f"bars_{metric}.png", bars_png(summary, metric)))
        if summary.groups:
            result.files.append(
                write_bytes(out_dir / f"groups_{metric}.png", group_bars_png(summary, metric))
            )
    if timelines:
        for record in timeline_records(summary, max_timelines):
            try:
                result.files.append(
                    write_bytes(out_dir / f"timeline_{record.run_id}.png", timeline_png(record))
                )
            except TimelineError as exc:
                result.notes.append(str(exc))
    return result


def timeline_records(summary: CampaignSummary, limit: int | None = None) -> list[RunRecord]:
    """Runs that have a timeline file, in campaign order, at most ``limit``."""
    records = sorted(
        (r for r in summary.records if r.timeline_file is not None), key=lambda r: (r.cycle, r.run_id)
    )
    return records if limit is None else records[:limit]

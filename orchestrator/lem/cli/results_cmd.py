"""``lem results …``: list, show, summarise, export, plot, report and compare results.

Every command is a thin skin over ``lem.results``; a missing path, an empty tree, an
unknown metric or group_by field, or a missing optional package ends with a one-line
message and exit status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console

from lem.results import export as export_mod
from lem.results.compare import (
    CompareError,
    Comparison,
    compare_campaigns,
    compare_two_configs,
    find_config,
)
from lem.results.export import ExportUnavailable, export_campaign, summary_json
from lem.results.fields import UnknownFieldError, validate_fields
from lem.results.files import OutputError
from lem.results.load import NoResultsError, load_results
from lem.results.manifest import read_manifest
from lem.results.metrics import UnknownMetricError, resolve_metrics
from lem.results.plots import BAR_METRICS, PlotsUnavailable, plot_campaign
from lem.results.report import write_report
from lem.results.show import config_detail, list_rows, run_detail, runs_matching
from lem.results.summary import CampaignSummary, summarize_campaign
from lem.results.tables import (
    comparison_table_data,
    group_table,
    rich_table,
    summary_table,
)

DEFAULT_RESULTS_DIR = Path("results")
ANALYSIS_DIR = "analysis"
FIRST_REPETITION = "rep-0001"  # a daemon campaign's repetitions share the campaign's group_by
PIPE_WIDTH = 220
USER_ERRORS = (
    NoResultsError,
    UnknownFieldError,
    UnknownMetricError,
    CompareError,
    OutputError,
    PlotsUnavailable,
    ExportUnavailable,
)

path_arg = click.Path(path_type=Path)
group_by_option = click.option(
    "--group-by",
    "group_by",
    multiple=True,
    metavar="KEY[,KEY…]",
    help="Also summarise by these configuration keys, comma-separated or repeated: batch_size (each "
    "backend's batch key, as in grid axes), a top-level key such as backend or fp_precision, or a dotted "
    "path such as pytorch.batch_size or decoder.preset (default: the campaign file's group_by).",
)
metric_option = click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME[,NAME…]",
    help="Metric column(s) to show, e.g. energy_per_output_token_j (default: a headline set).",
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Known failures become a one-line message with exit status 1."""
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:  # a result file that cannot be shown
        raise click.ClickException(str(exc)) from exc


def _console() -> Console:
    """Terminal width on a terminal; wide (no folded cells) when piped or captured."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)


def _summarize(campaign: Path, group_by: Sequence[str]) -> CampaignSummary:
    fields = validate_fields(group_by)
    if not fields and campaign.is_dir():
        manifest = read_manifest(campaign) or read_manifest(campaign / FIRST_REPETITION)
        fields = _valid_default(manifest.group_by) if manifest else ()
    return summarize_campaign(campaign, fields)


def _valid_default(fields: Sequence[str]) -> tuple[str, ...]:
    try:
        return validate_fields(fields)
    except UnknownFieldError:
        return ()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group("results")
def results() -> None:
    """Read results: list, show, summary, export, plot, report, compare."""


@results.command("list")
@click.argument("directory", required=False, type=path_arg)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(directory: Path | None, as_json: bool) -> None:
    """Campaigns and runs under DIRECTORY (default ./results): status, J/token, tok/s, flags."""
    with user_errors():
        root = directory or DEFAULT_RESULTS_DIR
        loaded = load_results(root)
        if not loaded.records and not loaded.problems:
            raise NoResultsError(f"{root}: no result.json files found")
        table = list_rows(loaded)
    if as_json:
        _echo_json({"headers": table.headers, "rows": table.rows, "notes": table.notes})
        return
    _console().print(rich_table(table))


@results.command("show")
@click.argument("target")
@click.option(
    "--dir",
    "directory",
    type=path_arg,
    default=DEFAULT_RESULTS_DIR,
    show_default=True,
    help="Where to look for TARGET when it is a run id, configuration name or config id.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the full result for a run).")
def show_cmd(target: str, directory: Path, as_json: bool) -> None:
    """Everything about one run (a run directory, result.json or run id) or one configuration."""
    with user_errors():
        path = Path(target)
        if path.exists():
            _show_run(path / "result.json" if path.is_dir() else path, as_json)
            return
        records = runs_matching(directory, target)
        if len(records) == 1 and records[0].run_id == target:
            _show_run(records[0].run_dir / "result.json", as_json)
            return
        if not records:
            raise NoResultsError(f"no run or configuration '{target}' under {directory}")
        _show_configs(records, target, as_json)


def _show_run(path: Path, as_json: bool) -> None:
    if not path.is_file():
        raise NoResultsError(f"{path}: no result.json here")
    detail, result = run_detail(path)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        _console().print(detail)


def _show_configs(records: Sequence[Any], target: str, as_json: bool) -> None:
    campaigns = sorted({r.run_dir.parent for r in records})
    for campaign in campaigns:
        summary = summarize_campaign(campaign)
        config = find_config(summary, target)
        if as_json:
            _echo_json(config_detail(summary, config, as_json=True))
        else:
            _console().print(config_detail(summary, config, as_json=False))


@results.command("summary")
@click.argument("campaign", type=path_arg)
@group_by_option
@metric_option
@click.option("--json", "as_json", is_flag=True, help="Print the full summary as JSON.")
def summary_cmd(campaign: Path, group_by: tuple[str, ...], metrics: tuple[str, ...], as_json: bool) -> None:
    """Per configuration across cycles: n, mean, std, CV, 95 % CI, min, max; flags; exclusions.

    With --group-by (or the campaign's group_by) a second table pools the runs of each group.

    Exit codes: 0 done; 1 CAMPAIGN missing or without results, an unknown --group-by key or
    metric (with the closest known one); 2 a usage error (an unknown option or choice).
    """
    with user_errors():
        names = resolve_metrics(list(metrics))
        summary = _summarize(campaign, group_by)
    if as_json:
        _echo_json(summary_json(summary))
        return
    console = _console()
    console.print(summary_table(summary, names))
    if summary.groups:
        console.print(group_table(summary, names))


@results.command("export")
@click.argument("campaign", type=path_arg)
@click.option("--format", "fmt", type=click.Choice(export_mod.FORMATS), required=True, help="Output format.")
@click.option("--out", type=path_arg, help="Output directory (default CAMPAIGN/analysis).")
@group_by_option
def export_cmd(campaign: Path, fmt: str, out: Path | None, group_by: tuple[str, ...]) -> None:
    """Write runs.<fmt> (one row per run) and configs.<fmt> (one row per configuration).

    The --group-by keys (or the campaign's group_by) become config.<key> columns.

    Exit codes: 0 done; 1 CAMPAIGN missing or without results, an unknown --group-by key or
    metric (with the closest known one), an unwritable output directory, pyarrow missing for parquet;
    2 a usage error (an unknown option or choice).
    """
    with user_errors():
        summary = _summarize(campaign, group_by)
        paths = export_campaign(summary, cast(export_mod.Format, fmt), out or campaign / ANALYSIS_DIR)
    for path in paths:
        click.echo(f"wrote {path}")


@results.command("plot")
@click.argument("campaign", type=path_arg)
@click.option("--out", type=path_arg, help="Output directory (default CAMPAIGN/analysis/plots).")
@click.option("--timelines/--no-timelines", default=True, show_default=True, help="Power timeline per run.")
@click.option("--max-timelines", type=click.IntRange(min=0), help="Draw at most this many timelines.")
@group_by_option
@metric_option
def plot_cmd(
    *,
    campaign: Path,
    out: Path | None,
    timelines: bool,
    max_timelines: int | None,
    group_by: tuple[str, ...],
    metrics: tuple[str, ...],
) -> None:
    """PNG plots: J/token vs throughput, bars per configuration and group, power timelines.

    With --group-by (or the campaign's group_by) bars are coloured by group and
    groups_<metric>.png shows one bar per group.

    Exit codes: 0 done; 1 CAMPAIGN missing or without results, an unknown --group-by key or
    metric (with the closest known one), an unwritable output directory, matplotlib missing;
    2 a usage error (an unknown option or choice).
    """
    with user_errors():
        names = resolve_metrics(list(metrics)) if metrics else BAR_METRICS
        summary = _summarize(campaign, group_by)
        plots = plot_campaign(
            summary, out or campaign / ANALYSIS_DIR / "plots", names, timelines, max_timelines
        )
    for path in plots.files:
        click.echo(f"wrote {path}")
    for note in plots.notes:
        click.echo(f"note: {note}", err=True)


@results.command("report")
@click.argument("campaign", type=path_arg)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: one self-contained file (plots inline); md: Markdown with its PNGs in <stem>_plots/.",
)
@click.option("--out", type=path_arg, help="Report file (default CAMPAIGN/analysis/report.<format>).")
@group_by_option
@metric_option
def report_cmd(
    campaign: Path, fmt: str, out: Path | None, group_by: tuple[str, ...], metrics: tuple[str, ...]
) -> None:
    """One self-contained HTML report (opens offline), or Markdown with its PNGs beside it.

    With --group-by (or the campaign's group_by) the report adds the grouped table and plots.

    Exit codes: 0 done; 1 CAMPAIGN missing or without results, an unknown --group-by key or
    metric (with the closest known one), an unwritable output file, matplotlib missing;
    2 a usage error (an unknown option or choice).
    """
    with user_errors():
        names = resolve_metrics(list(metrics))
        summary = _summarize(campaign, group_by)
        target = out or campaign / ANALYSIS_DIR / f"report.{fmt}"
        paths = write_report(summary, target, "html" if fmt == "html" else "md", names)
    for path in paths:
        click.echo(f"wrote {path}")


@results.command("compare")
@click.argument("a")
@click.argument("b")
@click.option(
    "--campaign",
    type=path_arg,
    default=DEFAULT_RESULTS_DIR,
    show_default=True,
    help="Where to find A and B when they are configuration names or ids.",
)
@metric_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare_cmd(a: str, b: str, campaign: Path, metrics: tuple[str, ...], as_json: bool) -> None:
    """Two campaign directories, or two configurations, side by side: ratio and significance."""
    with user_errors():
        names = resolve_metrics(list(metrics))
        comparison = _comparison(a, b, campaign, names)
    if as_json:
        _echo_json(_comparison_json(comparison))
        return
    _console().print(rich_table(comparison_table_data(comparison)))


def _comparison(a: str, b: str, campaign: Path, metrics: Sequence[str]) -> Comparison:
    path_a, path_b = Path(a), Path(b)
    if path_a.is_dir() and path_b.is_dir():
        return compare_campaigns(summarize_campaign(path_a), summarize_campaign(path_b), metrics)
    if path_a.is_dir() or path_b.is_dir():
        raise CompareError("give two campaign directories, or two configuration names (with --campaign)")
    summary = summarize_campaign(campaign)
    return compare_two_configs(summary, find_config(summary, a), summary, find_config(summary, b), metrics)


def _comparison_json(c: Comparison) -> dict[str, Any]:
    stats: Callable[[Any], dict[str, Any]] = export_mod.stats_json
    return {
        "a": c.a_label,
        "b": c.b_label,
        "only_a": list(c.only_a),
        "only_b": list(c.only_b),
        "flags": [{"code": f.code, "scope": f.scope, "message": f.message} for f in c.flags],
        "pairs": [
            {
                "a": p.a.name,
                "b": p.b.name,
                "metrics": [
                    {
                        "metric": m.metric,
                        "a": stats(m.a),
                        "b": stats(m.b),
                        "ratio": m.ratio,
                        "difference": m.difference,
                        "welch_ci95_low": m.welch_low,
                        "welch_ci95_high": m.welch_high,
                        "verdict": m.verdict,
                        "exceeds_intervals": m.exceeds_intervals,
                    }
                    for m in p.metrics
                ],
            }
            for p in c.pairs
        ],
    }

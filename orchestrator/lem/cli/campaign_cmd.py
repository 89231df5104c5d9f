"""``lem campaign``: ``plan`` prints a campaign's schedule; ``lem campaign FILE`` means ``run FILE``.

Both accept an experiment file too: it is a campaign of one configuration
(``lem.campaign.single``), the same thing ``lem experiment FILE`` runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from lem.campaign.check import campaign_summary, campaign_warnings, experiment_warnings, load_notices
from lem.campaign.expand import Expansion, expand_campaign
from lem.campaign.plan import PlannedRun, plan_campaign, total_gap_s
from lem.campaign.single import SINGLE_CYCLES, runnable_campaign
from lem.config.campaign import CampaignConfig
from lem.config.errors import ConfigError, ConfigWarning
from lem.config.loader import Kind, detect_kind, read_document


class DefaultRunGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name == "run":
            raise click.ClickException(
                "running campaigns is not available in this build: the campaign runner (`lem campaign run`) "
                "is not installed. `lem campaign plan FILE` prints the schedule it would follow."
            )
        return command


@click.group("campaign", cls=DefaultRunGroup)
def campaign() -> None:
    """Run (`lem campaign FILE` = `lem campaign run FILE`) or plan campaigns (or single experiments)."""


@campaign.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
def plan(file: Path, as_json: bool) -> None:
    """Print the ordered schedule of FILE and the time spent in gaps; run nothing.

    FILE is a campaign, or an experiment file (a campaign of one configuration, one cycle,
    no gaps). Exit codes: 0 the schedule was printed, 1 FILE is not a valid campaign or
    experiment (every problem is listed with its file and line), 2 a usage error.
    """
    print_plan(load_and_expand(file), as_json)


@dataclass(frozen=True)
class Loaded:
    """A file ready to plan or run: the campaign (an experiment wrapped in one) and its expansion."""

    file: Path
    campaign: CampaignConfig
    expansion: Expansion
    kind: Kind

    def advice(self) -> list[ConfigWarning]:
        """Advice worth printing before a run (information-only notes left out)."""
        pick = experiment_warnings if self.kind == "experiment" else campaign_warnings
        return [w for w in pick(self.campaign, self.expansion) if w.severity != "info"]


def print_plan(loaded: Loaded, as_json: bool = False) -> None:
    """The schedule on stdout (text or JSON), the advice on stderr."""
    runs = plan_campaign(loaded.campaign, loaded.expansion)
    for warning in loaded.advice():
        click.echo(str(warning), err=True)
    if as_json:
        click.echo(json.dumps(_plan_json(loaded.campaign, loaded.expansion, runs), default=str))
    else:
        click.echo(_plan_text(loaded.campaign, loaded.expansion, runs))


def load_and_expand(file: Path, *, cycles: int = SINGLE_CYCLES, experiment_only: bool = False) -> Loaded:
    """Load and expand a campaign, or an experiment as a one-configuration campaign of ``cycles``.

    A bad file ends the command with its problems (exit 1); a campaign file where only an
    experiment is accepted (``experiment_only``) is a usage error (exit 2).
    """
    try:
        document = read_document(file)
    except ConfigError as exc:
        raise click.ClickException(f"{file} is not a valid campaign or experiment:\n{exc}") from None
    kind = detect_kind(document.data)
    if experiment_only and kind == "campaign":
        raise click.UsageError(
            f"{file} is a campaign file, not an experiment: run it with `lem campaign run {file}`"
        )
    try:
        campaign_cfg = runnable_campaign(document, cycles=cycles)
        expansion = expand_campaign(campaign_cfg, file.parent)
    except ConfigError as exc:
        raise click.ClickException(f"{file} is not a valid {kind}:\n{exc}") from None
    prefix = f"{file}: " if kind == "campaign" else ""  # an experiment's notices name its file already
    for notice in load_notices(campaign_cfg, expansion):
        click.echo(f"{prefix}{notice}", err=True)
    return Loaded(file, campaign_cfg, expansion, kind)


def format_duration(seconds: float) -> str:
    """``45`` -> ``45 s``; ``300`` -> ``5 min``; ``7740`` -> ``2 h 09 min``."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _axis_text(values: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


_HEADER = ("cycle", "pos", "id", "backend", "gap before", "run", "axis values")


def _plan_text(campaign_cfg: CampaignConfig, expansion: Expansion, runs: list[PlannedRun]) -> str:
    width = max((len(r.run_id) for r in runs), default=3)
    row = "{:>5} {:>6}  {:<12}  {:<8} {:>10}  {:<WIDTH}  {}".replace("WIDTH", str(width))
    lines = [campaign_summary(campaign_cfg, expansion), row.format(*_HEADER)]
    lines.extend(
        row.format(
            r.cycle,
            r.position,
            r.config_id,
            r.backend,
            format_duration(r.gap_before_s),
            r.run_id,
            _axis_text(r.axis_values),
        )
        for r in runs
    )
    total = total_gap_s(runs)
    gaps = sum(1 for r in runs if r.gap_kind != "none")
    lines.append(f"total gap time: {format_duration(total)} ({total:g} s over {gaps} gaps)")
    for dup in expansion.duplicates:
        lines.append(f"duplicate: {dup.name} ({_axis_text(dup.axis_values)}) runs once, as {dup.same_as}")
    return "\n".join(lines)


def _plan_json(campaign_cfg: CampaignConfig, expansion: Expansion, runs: list[PlannedRun]) -> dict[str, Any]:
    execution = campaign_cfg.execution
    return {
        "campaign_name": campaign_cfg.campaign_name,
        "structure": execution.structure,
        "cycles": execution.cycles,
        "configurations": len(expansion.configs),
        "total_gap_s": total_gap_s(runs),
        "duplicates": [
            {"name": d.name, "same_as": d.same_as, "axis_values": d.axis_values} for d in expansion.duplicates
        ],
        "runs": [
            {
                "run_id": r.run_id,
                "cycle": r.cycle,
                "position": r.position,
                "config_id": r.config_id,
                "name": r.name,
                "backend": r.backend,
                "axis_values": r.axis_values,
                "gap_before_s": r.gap_before_s,
                "gap_kind": r.gap_kind,
            }
            for r in runs
        ],
    }

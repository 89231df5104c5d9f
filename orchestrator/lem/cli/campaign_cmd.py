"""``lem campaign``: ``plan`` prints a campaign's schedule; ``lem campaign FILE`` means ``run FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lem.campaign.check import campaign_summary, campaign_warnings, load_notices
from lem.campaign.expand import Expansion, expand_campaign
from lem.campaign.plan import PlannedRun, plan_campaign, total_gap_s
from lem.config.campaign import CampaignConfig
from lem.config.errors import ConfigError
from lem.config.loader import load_campaign


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
    """Run (`lem campaign FILE` = `lem campaign run FILE`) or plan campaigns."""


@campaign.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@click.pass_context
def plan(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Print the ordered schedule of campaign FILE and the time spent in gaps."""
    campaign_cfg, expansion = load_and_expand(file)
    runs = plan_campaign(campaign_cfg, expansion)
    advice = [w for w in campaign_warnings(campaign_cfg, expansion) if w.severity != "info"]
    for warning in advice:
        click.echo(str(warning), err=True)
    if as_json:
        click.echo(json.dumps(_plan_json(campaign_cfg, expansion, runs), default=str))
    else:
        click.echo(_plan_text(campaign_cfg, expansion, runs))


def load_and_expand(file: Path) -> tuple[CampaignConfig, Expansion]:
    """Load and expand a campaign; a bad file ends the command with its problems (exit 1)."""
    try:
        campaign_cfg = load_campaign(file)
        expansion = expand_campaign(campaign_cfg, file.parent)
    except ConfigError as exc:
        raise click.ClickException(f"{file} is not a valid campaign:\n{exc}") from None
    for notice in load_notices(campaign_cfg, expansion):
        click.echo(f"{file}: {notice}", err=True)
    return campaign_cfg, expansion


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

"""``lem experiment FILE``: run one experiment file, as a campaign of one configuration.

No second execution path: the file is wrapped by ``lem.campaign.single`` and goes through
the same expansion, runtimes, scheduler, manifest and results tree as ``lem campaign run``
(``run_cmd.execute``). ``--dry-run`` adds the resolved configuration to the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from lem.campaign.expand import Expansion
from lem.campaign.single import SINGLE_CYCLES
from lem.cli.campaign_cmd import load_and_expand
from lem.cli.run_cmd import RunOptions, execute, run_options

MAX_CYCLES = 1_000  # the bound of a campaign's execution.cycles


@click.command("experiment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cycles",
    type=click.IntRange(1, MAX_CYCLES),
    default=SINGLE_CYCLES,
    show_default=True,
    help="How many times to run the experiment, back to back (a single experiment has no gaps "
    "between runs; write a campaign for config_gap_seconds / cycle_gap_seconds or thermal gaps).",
)
@run_options
@click.pass_context
def experiment(ctx: click.Context, /, file: Path, cycles: int, **options: Any) -> None:
    """Run experiment FILE: one configuration, --cycles times (default 1), no gaps.

    The experiment runs as a campaign of one configuration named after the file's `config_name`
    (or its file stem), through the same runtimes, manifest and results tree as
    `lem campaign run`: results go to RESULTS_DIR/<name>/<name>-c01/ (result.json,
    timeline.csv, spec.json, container.log) with manifest.json beside the runs, and a
    summary table is printed at the end. --dry-run prints the plan and the resolved
    configuration (every default filled in) without running anything.

    Exit codes: 0 every run done; 1 a run failed, or the experiment could not start (an
    invalid FILE, a missing image, results already there without --resume); 2 a usage error
    (an unknown option, a campaign file given as FILE); 130 stopped by Ctrl-C or SIGTERM
    (continue with --resume).
    """
    opts = RunOptions(**options)
    loaded = load_and_expand(file, cycles=cycles, experiment_only=True)
    if opts.dry_run:
        click.echo(resolved_configuration(loaded.expansion))
    cycles_flag = f" --cycles {cycles}" if cycles != SINGLE_CYCLES else ""
    execute(ctx, loaded, opts, resume_command=f"lem experiment {file}{cycles_flag} --resume")


def resolved_configuration(expansion: Expansion) -> str:
    """The experiment as it will run (YAML, every default filled in), under a heading."""
    (config,) = expansion.configs
    text = yaml.safe_dump(config.config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return f"resolved configuration ({config.name}, config id {config.config_id}):\n{text}"

"""``lem``: the command line (the only click importer; every command is a thin skin over the API).

Commands live in their own modules and are attached to ``main`` below with
``add_command`` (one import line and one ``add_command`` line per module).
"""

from __future__ import annotations

import click

from lem import __version__
from lem.cli import daemon_cmd, run_cmd, slurm_cmd
from lem.cli.campaign_cmd import campaign
from lem.cli.cleanup_cmd import cleanup
from lem.cli.config_cmd import config
from lem.cli.context import AppContext, LemGroup
from lem.cli.doctor_cmd import doctor
from lem.cli.experiment_cmd import experiment
from lem.cli.images_cmd import images
from lem.cli.results_cmd import results


@click.group(cls=LemGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lem")
@click.option("--debug", is_flag=True, envvar="LEM_DEBUG", help="Show tracebacks of unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """LLenergyMeasure: energy, throughput and latency of LLM inference across backends."""
    ctx.obj = AppContext(debug=debug)


# --- command registration (one line per command module) ---
main.add_command(config)
main.add_command(campaign)
campaign.add_command(run_cmd.run)
campaign.add_command(slurm_cmd.status)
campaign.add_command(slurm_cmd.lane)
campaign.add_command(daemon_cmd.daemon_unit)
main.add_command(experiment)
main.add_command(results)
main.add_command(images)
main.add_command(cleanup)
main.add_command(doctor)

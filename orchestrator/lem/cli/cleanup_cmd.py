"""``lem cleanup``: remove this tool's containers left behind by campaigns that are no longer running."""

from __future__ import annotations

import click

from lem.campaign.liveness import live_campaign_ids, registry_dir
from lem.runtime.errors import LemRuntimeError


@click.command("cleanup")
def cleanup() -> None:
    """Remove orphan containers: labelled by lem, of campaigns not running on this host.

    Containers without lem's labels, and those of running campaigns, are never touched.
    """
    from lem.runtime.docker import DockerRuntime

    live = live_campaign_ids(registry_dir())
    try:
        removed = DockerRuntime().cleanup_orphans(live)
    except LemRuntimeError as e:
        raise click.ClickException(str(e)) from e
    for line in removed:
        click.echo(f"removed {line}")
    spared = f"; spared {len(live)} running campaign(s)" if live else ""
    click.echo(f"{len(removed)} orphan container(s) removed{spared}")

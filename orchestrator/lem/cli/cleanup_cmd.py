"""``lem cleanup``: remove this user's lem containers whose campaign and lem process are gone."""

from __future__ import annotations

import os

import click

from lem.campaign.liveness import live_campaign_ids, runtime_dir
from lem.runtime.errors import LemRuntimeError
from lem.runtime.orphans import OrphanPolicy


@click.command("cleanup")
@click.option(
    "--all-users",
    is_flag=True,
    help="Root only: also remove other users' orphans (never a container of a live campaign).",
)
def cleanup(all_users: bool) -> None:
    """Remove orphan containers: labelled by lem, of this user, whose campaign is not running
    on this host and whose lem process is gone.

    Containers without lem's labels, other users' containers (unless root passes --all-users)
    and those of running campaigns of any user are never touched.
    """
    from lem.runtime.docker import DockerRuntime

    if all_users and os.geteuid() != 0:
        raise click.UsageError("--all-users is for root only: other users' containers are theirs to clean")
    live = live_campaign_ids(runtime_dir())
    policy = OrphanPolicy.for_caller(os.getuid(), live, all_users=all_users)
    try:
        removed = DockerRuntime().cleanup_orphans(policy)
    except LemRuntimeError as e:
        raise click.ClickException(str(e)) from e
    for line in removed:
        click.echo(f"removed {line}")
    spared = f"; spared {len(live)} running campaign(s)" if live else ""
    click.echo(f"{len(removed)} orphan container(s) removed{spared}")

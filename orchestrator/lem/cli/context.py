"""Shared CLI state and the root group's error boundary.

Commands receive the ``AppContext`` with ``@pass_app``. ``LemGroup`` turns any
unexpected exception into a one-line error (exit 1) instead of a traceback,
unless ``--debug`` / ``LEM_DEBUG=1`` asks for the traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click

from lem.config.errors import ConfigError


@dataclass
class AppContext:
    """State shared by every command (``ctx.obj``)."""

    debug: bool = False


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def debug_enabled(ctx: click.Context | None = None) -> bool:
    obj = ctx.find_object(AppContext) if ctx is not None else None
    return (obj is not None and obj.debug) or os.environ.get("LEM_DEBUG", "") not in ("", "0")


class LemGroup(click.Group):
    """Root group: user mistakes and unexpected errors end as messages, never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ConfigError as exc:
            raise click.ClickException(f"invalid configuration:\n{exc}") from exc
        except Exception as exc:
            if debug_enabled(ctx):
                raise
            raise click.ClickException(
                f"unexpected error: {type(exc).__name__}: {exc}\n"
                "(rerun with --debug or LEM_DEBUG=1 to see the traceback, and please report it)"
            ) from exc

"""A systemd service that keeps a daemon campaign running: restarted on failure, resumed every start.

``Restart=on-failure`` restarts ``lem campaign run FILE --resume`` after a crash (and a
reboot starts it again once enabled); ``--resume`` continues the repetition in flight and
keeps the schedule. A stop (``systemctl stop``) sends SIGINT: the running container is
stopped, its run marked interrupted, and lem exits 130, which the unit counts as success.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
STOP_TIMEOUT_S = 300
RESTART_S = 30


@dataclass(frozen=True)
class UnitRequest:
    campaign_name: str
    command: tuple[str, ...]  # argv of the lem run, absolute paths
    working_dir: Path
    user_unit: bool
    user: str | None = None  # the account a system unit runs as
    docker: bool = False  # the runs need the Docker engine (ordered after docker.service)


def unit_name(campaign_name: str) -> str:
    return f"lem-{campaign_name}.service"


def exec_quote(arg: str) -> str:
    """One argument as systemd's command-line parser reads it (``%`` and ``$`` escaped, quoted if needed)."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(arg):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_unit(request: UnitRequest) -> str:
    exec_start = " ".join(exec_quote(a) for a in request.command)
    lines = [
        "[Unit]",
        f"Description=LLenergyMeasure scheduled campaign {request.campaign_name}",
        *_order_lines(request),
        "",
        "[Service]",
        "Type=simple",
        *_user_lines(request),
        f"WorkingDirectory={exec_quote(str(request.working_dir))}",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        f"RestartSec={RESTART_S}",
        "KillSignal=SIGINT",
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_S}",
        "SuccessExitStatus=130",
        "",
        "[Install]",
        f"WantedBy={'default.target' if request.user_unit else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def _order_lines(request: UnitRequest) -> Sequence[str]:
    after = ["network-online.target"]
    if request.docker and not request.user_unit:
        after.append("docker.service")  # a user manager cannot order itself after a system unit
    return [f"After={' '.join(after)}", f"Wants={' '.join(after)}"]


def _user_lines(request: UnitRequest) -> Sequence[str]:
    return [f"User={request.user}"] if request.user and not request.user_unit else []


def install_text(request: UnitRequest) -> str:
    """How to install the unit (printed on stderr beside it)."""
    name = unit_name(request.campaign_name)
    if request.user_unit:
        return (
            f"# install: save this as ~/.config/systemd/user/{name}, then\n"
            "#   systemctl --user daemon-reload\n"
            f"#   systemctl --user enable --now {name}\n"
            "#   loginctl enable-linger $USER    # keep it running after logout and start it at boot\n"
            f"# watch: journalctl --user -u {name} -f"
        )
    return (
        f"# install: save this as /etc/systemd/system/{name} (as root), then\n"
        "#   systemctl daemon-reload\n"
        f"#   systemctl enable --now {name}\n"
        f"# watch: journalctl -u {name} -f"
    )

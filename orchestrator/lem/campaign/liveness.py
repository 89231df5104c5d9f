"""Which campaigns are running on this host, so that orphan cleanup spares their containers.

A running campaign holds an exclusive ``flock`` on ``<registry>/<campaign_id>.lock`` for its
whole life; the kernel drops the lock when the process ends, however it ends. A campaign is
live exactly when its lock file is locked. Orphan cleanup removes this tool's containers of
every other campaign.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

DEFAULT_REGISTRY = Path("~/.cache/llenergymeasure/live")


def registry_dir(env: dict[str, str] | None = None) -> Path:
    """``$LEM_STATE_DIR/live`` when set, else ``~/.cache/llenergymeasure/live``."""
    state = (env if env is not None else dict(os.environ)).get("LEM_STATE_DIR")
    return (Path(state) / "live") if state else DEFAULT_REGISTRY.expanduser()


PART_SEPARATOR = "@"  # never in a campaign id (campaign names are [A-Za-z0-9._-])


def live_key(campaign_id: str, part: str) -> str:
    """The lock name of one part of a campaign (a Slurm lane, the Slurm orchestrator).

    ``live_campaign_ids`` counts it as the campaign itself, so orphan cleanup on a node spares
    the containers of a lane running there.
    """
    return f"{campaign_id}{PART_SEPARATOR}{part}"


class CampaignBusy(Exception):
    """The campaign is already running in another lem process."""


class LiveCampaign:
    """Holds the campaign's liveness lock while the campaign runs."""

    def __init__(self, registry: Path, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        self.path = registry / f"{campaign_id}.lock"
        self._fd: int | None = None

    def __enter__(self) -> LiveCampaign:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CampaignBusy(
                f"campaign {self.campaign_id} is already running in another lem process (pid {holder}); "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def live_campaign_ids(registry: Path) -> set[str]:
    """Campaign ids whose lock is held by a running process (a file left by a dead process is not locked)."""
    live: set[str] = set()
    if not registry.is_dir():
        return live
    for path in registry.glob("*.lock"):
        if _is_locked(path):
            live.add(path.name.removesuffix(".lock").split(PART_SEPARATOR, 1)[0])
    return live


def _is_locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

"""Which campaigns are running on this host — for every user — and one lem per results directory.

Host-wide liveness. A running campaign holds an exclusive ``flock`` on
``<runtime dir>/<campaign_id>.<pid>.lock`` for its whole life; the kernel drops the lock when
the process ends, however it ends. The runtime directory is shared by every user of the host:
``$LEM_RUNTIME_DIR``, else ``/run/lem`` where an administrator created it, else
``/tmp/lem-runtime`` (created mode 1777, like ``/tmp``). Lock files are mode 0644, so any
user can open one read-only and test the lock (``LOCK_SH | LOCK_NB`` fails while it is held):
a campaign is live exactly while one of its lock files is locked. One file per process, so
users never contend for a name. Containers also carry their lem process (host, pid, start
time, uid) as labels (``lem.runtime.orphans``), which settles the rest.

Results directory. ``ResultsDirLock`` holds an exclusive ``flock`` on
``<results_root>/.<campaign_name>.lock`` (beside the campaign directory, so that ``--fresh``
can move the directory while the lock is held): two lem processes never use one results
directory at once, whatever their state directory or campaign definition.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from pathlib import Path
from types import TracebackType

from lem.runtime.process import current_process
from lem_harness.fileio import open_beneath

SHARED_RUNTIME_DIR = Path("/run/lem")
FALLBACK_RUNTIME_DIR = Path("/tmp/lem-runtime")
_SHARED_MODE = 0o1777


PART_SEPARATOR = "@"  # never in a campaign id (campaign names are [A-Za-z0-9._-])


def live_key(campaign_id: str, part: str) -> str:
    """The lock name of one part of a campaign (a Slurm lane, the Slurm orchestrator).

    ``live_campaign_ids`` counts it as the campaign itself, so orphan cleanup on a node spares
    the containers of a lane running there.
    """
    return f"{campaign_id}{PART_SEPARATOR}{part}"


class CampaignBusy(Exception):
    """The results directory is in use by another lem process, or the runtime dir is unusable."""


def runtime_dir(env: dict[str, str] | None = None) -> Path:
    """``$LEM_RUNTIME_DIR``, else ``/run/lem`` if it exists, else ``/tmp/lem-runtime``."""
    given = (env if env is not None else dict(os.environ)).get("LEM_RUNTIME_DIR")
    if given:
        return Path(given)
    return SHARED_RUNTIME_DIR if SHARED_RUNTIME_DIR.is_dir() else FALLBACK_RUNTIME_DIR


def ensure_runtime_dir(path: Path) -> None:
    """Create ``path`` (mode 1777) if missing; refuse a link or a directory this user cannot write."""
    try:
        path.mkdir(parents=True)
        os.chmod(path, _SHARED_MODE)  # mkdir's mode is cut by the umask
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or not os.access(path, os.W_OK | os.X_OK):
        raise CampaignBusy(
            f"the host-wide runtime directory {path} is not a directory this user can write "
            "(a link, or created by someone else without mode 1777): ask the administrator to "
            "create it with `install -d -m 1777 " + str(path) + "`, or set LEM_RUNTIME_DIR"
        )


class _Flock:
    """An exclusive, non-blocking ``flock`` on a file opened without following links."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.fd: int | None = None

    def acquire(self) -> dict[str, object] | None:
        """Lock; None on success, else what the holder wrote (it holds the lock)."""
        fd = open_beneath(self.directory, self.name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            return holder
        os.fchmod(fd, 0o644)
        os.ftruncate(fd, 0)
        me = current_process()
        os.write(fd, json.dumps({"pid": me.pid, "start_ticks": me.start_ticks, "uid": me.uid}).encode())
        self.fd = fd
        return None

    def release(self, unlink: bool) -> None:
        if self.fd is not None:
            if unlink:
                (self.directory / self.name).unlink(missing_ok=True)
            os.close(self.fd)  # closing drops the lock
            self.fd = None


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class LiveCampaign:
    """Announces host-wide that this process runs ``campaign_id``, while the context is open."""

    def __init__(self, registry: Path, campaign_id: str, *, exclusive: bool = False) -> None:
        """``exclusive``: one process per ``campaign_id`` on the host (a daemon); the lock file is
        then ``<campaign_id>.host.lock``, shared by every process that asks for it."""
        self.campaign_id = campaign_id
        self.registry = registry
        self.exclusive = exclusive
        owner = "host" if exclusive else str(os.getpid())
        self._lock = _Flock(registry, f"{campaign_id}.{owner}.lock")

    @property
    def path(self) -> Path:
        return self.registry / self._lock.name

    def __enter__(self) -> LiveCampaign:
        ensure_runtime_dir(self.registry)
        holder = self._lock.acquire()
        if holder is not None:  # only an exclusive name is shared between processes
            raise CampaignBusy(
                f"campaign {self.campaign_id} is already running in another lem process "
                f"(pid {holder.get('pid', 'unknown')}); wait for it to finish or stop it"
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release(unlink=not self.exclusive)  # a shared name stays: see ResultsDirLock


class ResultsDirLock:
    """One lem process per results directory (``<results_root>/<campaign_name>``)."""

    def __init__(self, results_root: Path, campaign_name: str) -> None:
        self.campaign_dir = results_root / campaign_name
        self._lock = _Flock(results_root, f".{campaign_name}.lock")

    def __enter__(self) -> ResultsDirLock:
        self.campaign_dir.parent.mkdir(parents=True, exist_ok=True)
        holder = self._lock.acquire()
        if holder is not None:
            pid, uid = holder.get("pid", "unknown"), holder.get("uid", "unknown")
            raise CampaignBusy(
                f"{self.campaign_dir} is in use by another lem process (pid {pid}, uid {uid}): two "
                "processes would measure the same runs. Wait for it to finish or stop it, or give "
                "this campaign another --results-dir"
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release(unlink=False)  # unlinking would let a third process lock a new inode


def live_campaign_ids(registry: Path) -> set[str]:
    """Campaign ids (of any user) whose lock is held by a running process."""
    live: set[str] = set()
    if not registry.is_dir():
        return live
    for entry in os.scandir(registry):
        if (
            entry.name.endswith(".lock")
            and entry.is_file(follow_symlinks=False)
            and _is_locked(registry, entry.name)
        ):
            stem = entry.name.removesuffix(".lock")  # <campaign_id>[@<part>].<pid or host>
            stem = stem.rpartition(".")[0] or stem
            live.add(stem.split(PART_SEPARATOR, 1)[0])
    return live


def _is_locked(directory: Path, name: str) -> bool:
    try:
        fd = open_beneath(directory, name, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False

"""The local runtime: the same harness, the same files, in a subprocess on this host.

For machines without Docker and for the CPU demo. A ``ContainerSpec`` is honoured by mapping
its container paths back to the host: bind mounts to their source, named volumes to
directories under ``volume_root``; the spec's cache directories are rewritten accordingly in a
private copy of ``spec.json`` (the original in the run directory stays as written). GPUs are
selected with ``CUDA_VISIBLE_DEVICES`` (UUIDs). ``mem_limit`` cannot be enforced here.

The harness dies with lem. It runs in its own process group (a stop, a timeout or lem's forced
exit signal the whole group) and with a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``,
set in the child before ``exec``): when lem ends in any way, SIGKILL included, the kernel kills
the harness (the signal follows the *thread* that started the child: lem starts runs from its main
thread, which lives as long as lem does). Its pid and start time are written to the run directory
(``lem.runtime.process.ATTEMPT_FILE``; inside a Slurm job, the job's id too) while it runs, so that
a resume can refuse to start the run again while an earlier attempt still lives. The private spec
copy is a temporary file in the run directory (``.spec.json.<random>.tmp``): removed when the run
ends, and by the next resume's sweep if lem was killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from lem.runtime.errors import LemRuntimeError
from lem.runtime.logsink import LogSink
from lem.runtime.orphans import OrphanPolicy
from lem.runtime.outcome import ExitInfo, StoppedBy, check_result, classify
from lem.runtime.process import ProcessId as _ProcessId
from lem.runtime.process import clear_attempt, host_id, record_attempt, slurm_job_id, start_ticks
from lem.runtime.spec import HF_CACHE_TARGET, SPEC_TARGET, ContainerSpec, Mount, RunOutcome
from lem_harness.fileio import read_bytes_nofollow

DEFAULT_VOLUME_ROOT = Path("~/.cache/llenergymeasure/volumes")
SPEC_PATH_KEYS = ("baseline_cache_dir", "engine_cache_dir")
LOG_JOIN_S = 10.0
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """``preexec_fn``: SIGKILL this child when its parent dies (and at once if it already has)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class PathMap:
    """Container path → host path, through a spec's mounts (longest target first)."""

    def __init__(self, mounts: Sequence[Mount], volume_root: Path) -> None:
        self._pairs = sorted(
            ((m.target, m.source if m.kind == "bind" else str(volume_root / m.source)) for m in mounts),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )

    def host(self, container_path: str) -> str:
        path = PurePosixPath(container_path)
        for target, source in self._pairs:
            if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
                return str(Path(source) / path.relative_to(target))
        return container_path

    def volume_dirs(self, mounts: Sequence[Mount]) -> list[Path]:
        return [Path(self.host(m.target)) for m in mounts if m.kind == "volume"]


class LocalRuntime:
    """``Runtime`` that runs ``python -m lem_harness`` as a subprocess of this host."""

    name = "local"

    def __init__(
        self,
        python: str = sys.executable,
        *,
        volume_root: Path = DEFAULT_VOLUME_ROOT,
        base_env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
        term_grace_s: float = 5.0,
    ) -> None:
        self._python = python
        self._volume_root = Path(volume_root).expanduser()
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._clock = clock
        self._poll_s = poll_s
        self._term_grace_s = term_grace_s
        self._active: subprocess.Popen[bytes] | None = None

    def check(self, images: Sequence[str]) -> None:
        """Images do not matter here; the harness must be importable by ``python``."""
        probe = subprocess.run(
            [self._python, "-c", "import lem_harness"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode != 0:
            raise LemRuntimeError(
                f"the local runtime cannot import lem_harness with {self._python}: "
                f"{probe.stderr.strip()[-300:]}",
                "install it (make install, or pip install -e .) or use the docker runtime",
            )

    def cleanup_orphans(self, policy: OrphanPolicy) -> list[str]:
        return []  # the harness dies with lem (parent-death signal); nothing outlives it

    def abandon(self) -> None:
        """SIGKILL the running harness's process group at once (lem is exiting)."""
        proc = self._active
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def query(self, spec: ContainerSpec, timeout_s: float = 120.0) -> str:
        """A short harness command (``probe``) in a subprocess with the run's environment; its stdout."""
        paths = PathMap(spec.mounts, self._volume_root)
        command = [self._python, "-m", "lem_harness", *spec.command]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=self._environment(spec, paths),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LemRuntimeError(f"the local harness did not answer: {e}", "check the Python path") from e
        if done.returncode != 0:
            raise LemRuntimeError(
                f"the local harness could not answer `{spec.command[0]}` (exit {done.returncode}): "
                f"{done.stderr.strip()[-300:]}",
                "reinstall it (make install)",
            )
        return done.stdout

    def run(self, spec: ContainerSpec, stop: threading.Event) -> RunOutcome:
        if stop.is_set():
            return RunOutcome("interrupted", None, 0.0, [], "stopped before the harness started")
        paths = PathMap(spec.mounts, self._volume_root)
        for directory in paths.volume_dirs(spec.mounts):
            directory.mkdir(parents=True, exist_ok=True)
        sink = LogSink(spec.log_path, spec.secret_values())
        if spec.mem_limit is not None:
            sink.note(f"mem_limit {spec.mem_limit} is not enforced by the local runtime")
        run_dir = Path(spec.run_dir() or spec_dir(spec))
        scratch: list[Path] = []
        try:
            command = self._command(spec, paths, run_dir, scratch)
            return self._execute(spec, command, self._environment(spec, paths), stop, sink)
        finally:
            sink.close()
            for path in scratch:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ helpers

    def _command(self, spec: ContainerSpec, paths: PathMap, run_dir: Path, scratch: list[Path]) -> list[str]:
        args = [paths.host(a) if a.startswith("/") else a for a in spec.command]
        spec_mount = spec.mount_at(SPEC_TARGET)
        if spec_mount is not None and SPEC_TARGET in spec.command:
            copy = local_spec_copy(Path(spec_mount.source), paths, run_dir)
            scratch.append(copy)
            args[spec.command.index(SPEC_TARGET)] = str(copy)
        return [self._python, "-m", "lem_harness", *args]

    def _environment(self, spec: ContainerSpec, paths: PathMap) -> dict[str, str]:
        env = dict(self._base_env)
        for name, value in spec.environment:
            if name == "NVIDIA_VISIBLE_DEVICES":
                continue
            if name == "HF_HOME" and value == HF_CACHE_TARGET and "HF_HOME" in self._base_env:
                continue  # keep this host's own Hugging Face cache
            env[name] = paths.host(value) if value.startswith("/") else value
        env.pop("NVIDIA_VISIBLE_DEVICES", None)
        if spec.gpu_uuids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpu_uuids)
        return env

    def _execute(
        self,
        spec: ContainerSpec,
        command: list[str],
        env: dict[str, str],
        stop: threading.Event,
        sink: LogSink,
    ) -> RunOutcome:
        started = self._clock()
        run_dir = spec.run_dir()
        try:
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - needed for prctl
            )
        except OSError as e:
            raise LemRuntimeError(
                f"cannot start {command[0]}: {e.strerror or e}", "check the Python path"
            ) from e
        self._active = proc
        if run_dir is not None:
            record_attempt(
                Path(run_dir),
                _ProcessId(host_id(), proc.pid, start_ticks(proc.pid) or 0, os.getuid()),
                slurm_job_id(),  # a Slurm lane's job: a later job on another node asks whether it ended
            )
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, sink), daemon=True)
        reader.start()
        try:
            with proc:  # closes the pipe
                stopped_by = self._wait(proc, stop, started + spec.timeout_s)
                reader.join(LOG_JOIN_S)
        finally:
            self._active = None
            _kill_group(proc.pid)  # anything the harness left in its group goes with it
            if run_dir is not None:
                clear_attempt(Path(run_dir))
        if stopped_by is not None:
            sink.note(f"run {stopped_by}: harness process stopped")
        info = ExitInfo(_exit_code(proc.returncode), oom_killed=False, stopped_by=stopped_by)
        result = check_result(spec.run_dir(), spec.run_id)
        duration = self._clock() - started
        return classify(info, result, timeout_s=spec.timeout_s, duration_s=duration, log_tail=sink.tail())

    def _wait(
        self, proc: subprocess.Popen[bytes], stop: threading.Event, deadline: float
    ) -> StoppedBy | None:
        while True:
            try:
                proc.wait(timeout=self._poll_s)
                return None
            except subprocess.TimeoutExpired:
                pass
            if stop.is_set() or self._clock() >= deadline:
                reason: StoppedBy = "interrupted" if stop.is_set() else "timeout"
                _terminate(proc, self._term_grace_s)
                return reason


def spec_dir(spec: ContainerSpec) -> str:
    mount = spec.mount_at(SPEC_TARGET)
    return str(Path(mount.source).parent) if mount is not None else tempfile.gettempdir()


def local_spec_copy(spec_path: Path, paths: PathMap, scratch_dir: Path) -> Path:
    """A copy of ``spec.json`` whose cache directories point at host paths (a temp file in
    ``scratch_dir``, named as ``lem_harness.fileio`` names temp files; the caller removes it)."""
    try:
        data = json.loads(read_bytes_nofollow(spec_path))
    except (OSError, json.JSONDecodeError) as e:
        raise LemRuntimeError(f"cannot read the run spec {spec_path}: {e}", "write spec.json first") from e
    for key in SPEC_PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.startswith("/"):
            data[key] = paths.host(value)
            Path(data[key]).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch_dir, prefix=f".{spec_path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data))
    return Path(name)


def _pump(stream: IO[bytes], sink: LogSink) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        sink.feed(chunk)


def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the harness's process group, then SIGKILL it after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _exit_code(returncode: int | None) -> int | None:
    """Shell convention: killed by signal N → 128 + N (as Docker reports it)."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode

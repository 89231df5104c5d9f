"""The local runtime: the same harness, the same files, in a subprocess on this host.

For machines without Docker and for the CPU demo. A ``ContainerSpec`` is honoured by mapping
its container paths back to the host: bind mounts to their source, named volumes to
directories under ``volume_root``; the spec's cache directories are rewritten accordingly in a
private copy of ``spec.json`` (the original in the run directory stays as written). GPUs are
selected with ``CUDA_VISIBLE_DEVICES`` (UUIDs). ``mem_limit`` cannot be enforced here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from lem.runtime.errors import LemRuntimeError
from lem.runtime.logsink import LogSink
from lem.runtime.outcome import ExitInfo, StoppedBy, check_result, classify
from lem.runtime.spec import HF_CACHE_TARGET, SPEC_TARGET, ContainerSpec, Mount, RunOutcome

DEFAULT_VOLUME_ROOT = Path("~/.cache/llenergymeasure/volumes")
SPEC_PATH_KEYS = ("baseline_cache_dir", "engine_cache_dir")
LOG_JOIN_S = 10.0


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

    def cleanup_orphans(self, live_campaign_ids: Collection[str]) -> list[str]:
        return []  # subprocesses end with their run; nothing outlives it

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
        with tempfile.TemporaryDirectory(prefix="lem-local-") as scratch:
            command = self._command(spec, paths, Path(scratch))
            try:
                return self._execute(spec, command, self._environment(spec, paths), stop, sink)
            finally:
                sink.close()

    # ------------------------------------------------------------------ helpers

    def _command(self, spec: ContainerSpec, paths: PathMap, scratch: Path) -> list[str]:
        args = [paths.host(a) if a.startswith("/") else a for a in spec.command]
        spec_mount = spec.mount_at(SPEC_TARGET)
        if spec_mount is not None and SPEC_TARGET in spec.command:
            args[spec.command.index(SPEC_TARGET)] = str(
                local_spec_copy(Path(spec_mount.source), paths, scratch)
            )
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
        try:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except OSError as e:
            raise LemRuntimeError(
                f"cannot start {command[0]}: {e.strerror or e}", "check the Python path"
            ) from e
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, sink), daemon=True)
        reader.start()
        with proc:  # closes the pipe
            stopped_by = self._wait(proc, stop, started + spec.timeout_s)
            reader.join(LOG_JOIN_S)
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


def local_spec_copy(spec_path: Path, paths: PathMap, scratch: Path) -> Path:
    """A copy of ``spec.json`` whose cache directories point at host paths."""
    try:
        data = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LemRuntimeError(f"cannot read the run spec {spec_path}: {e}", "write spec.json first") from e
    for key in SPEC_PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.startswith("/"):
            data[key] = paths.host(value)
            Path(data[key]).mkdir(parents=True, exist_ok=True)
    out = scratch / spec_path.name
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


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


def _exit_code(returncode: int | None) -> int | None:
    """Shell convention: killed by signal N → 128 + N (as Docker reports it)."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode

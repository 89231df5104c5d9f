"""LocalRuntime with real subprocesses: a small stand-in harness script plays each ending."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from lem.runtime.errors import LemRuntimeError
from lem.runtime.local import LocalRuntime, PathMap
from lem.runtime.spec import ContainerSpec, Mount

RUN_ID = "pytorch-bs1-c01"

# Called as: <script> -m lem_harness run --spec SPEC --out OUT ; behaviour from LEM_FAKE.
FAKE_HARNESS = """\
import json, os, signal, sys, time
args = sys.argv[1:]
assert args[:3] == ["-m", "lem_harness", "run"], args
spec_path, out = args[args.index("--spec") + 1], args[args.index("--out") + 1]
spec = json.load(open(spec_path))
mode = os.environ["LEM_FAKE"]
def result(status):
    body = {"run_id": spec["run_id"], "config_id": "c", "config_name": "n", "cycle": 1, "backend": "pytorch",
            "status": status, "started_at": "t0", "finished_at": "t1"}
    if status == "failed":
        body["error"] = {"type": "RuntimeError", "message": "engine exploded"}
    tmp = os.path.join(out, "result.json.tmp")
    json.dump(body, open(tmp, "w")); os.replace(tmp, os.path.join(out, "result.json"))
print("fake harness", mode, flush=True)
if mode == "ok":
    result("ok")
elif mode == "fail":
    result("failed"); sys.exit(1)
elif mode == "crash":
    print("Traceback: boom", flush=True); sys.exit(7)
elif mode == "hang":
    time.sleep(60)
elif mode == "stubborn":
    signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
    print("ready", flush=True)
    for _ in range(600): time.sleep(0.1)
elif mode == "env":
    print("CUDA", os.environ.get("CUDA_VISIBLE_DEVICES"), "NVD", os.environ.get("NVIDIA_VISIBLE_DEVICES"))
    print("HF_HOME", os.environ.get("HF_HOME"), "TOKEN", os.environ.get("HF_TOKEN"))
    print("BASELINE", spec["baseline_cache_dir"], os.path.isdir(spec["baseline_cache_dir"]))
    result("ok")
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_HARNESS}")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "camp" / RUN_ID
    path.mkdir(parents=True)
    spec = {"run_id": RUN_ID, "baseline_cache_dir": "/lem/cache/baseline", "engine_cache_dir": None}
    (path / "spec.json").write_text(json.dumps(spec))
    return path


def _spec(run_dir: Path, *, timeout_s: float = 30.0, gpus: tuple[str, ...] = ()) -> ContainerSpec:
    return ContainerSpec(
        image="llenergymeasure/pytorch:cpu",
        command=("run", "--spec", "/lem/spec.json", "--out", "/lem/run"),
        run_id=RUN_ID,
        campaign_id="camp",
        backend="pytorch",
        gpu_uuids=gpus,
        mounts=(
            Mount(str(run_dir / "spec.json"), "/lem/spec.json", True, "bind"),
            Mount(str(run_dir), "/lem/run", False, "bind"),
            Mount(str(run_dir.parent / "baseline"), "/lem/cache/baseline", False, "bind"),
            Mount("lem-hf-cache", "/lem/cache/hf", False, "volume"),
        ),
        environment=(
            ("NVIDIA_VISIBLE_DEVICES", ",".join(gpus) or "void"),
            ("HF_HOME", "/lem/cache/hf"),
            ("HF_TOKEN", "hf_local_secret"),
        ),
        labels=(),
        shm_size=None,
        ipc_host=False,
        ulimits=(),
        timeout_s=timeout_s,
        log_path=str(run_dir / "container.log"),
    )


def _runtime(fake_python: str, tmp_path: Path, mode: str, **env: str) -> LocalRuntime:
    return LocalRuntime(
        fake_python, volume_root=tmp_path / "volumes", base_env={"LEM_FAKE": mode, **env}, term_grace_s=0.5
    )


def test_ok_run(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "ok").run(_spec(run_dir), threading.Event())

    assert (outcome.status, outcome.exit_code, outcome.message) == ("ok", 0, "ok")
    assert outcome.log_tail == ["fake harness ok"]
    assert (run_dir / "container.log").read_text() == "fake harness ok\n"


def test_same_files_mapped_to_host_paths(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "env").run(
        _spec(run_dir, gpus=("GPU-aaaa", "GPU-bbbb")), threading.Event()
    )

    assert outcome.status == "ok"
    assert outcome.log_tail[1:] == [
        "CUDA GPU-aaaa,GPU-bbbb NVD None",
        f"HF_HOME {tmp_path}/volumes/lem-hf-cache TOKEN ***",
        f"BASELINE {run_dir.parent}/baseline True",
    ]
    assert json.loads((run_dir / "spec.json").read_text())["baseline_cache_dir"] == "/lem/cache/baseline"


def test_host_hf_home_is_kept(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "env", HF_HOME="/srv/hf").run(_spec(run_dir), threading.Event())
    assert outcome.log_tail[2] == "HF_HOME /srv/hf TOKEN ***"


def test_failed_run_reports_the_harness_error(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "fail").run(_spec(run_dir), threading.Event())

    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.message == "exit 1: the harness reported a failure (RuntimeError: engine exploded)"


def test_crash_without_result(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "crash").run(_spec(run_dir), threading.Event())

    assert (outcome.status, outcome.exit_code) == ("failed", 7)
    assert outcome.message == "exit 7. Last log line: Traceback: boom"
    assert not (run_dir / "result.json").exists()


def test_timeout_terminates_the_process(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    outcome = _runtime(fake_python, tmp_path, "hang").run(_spec(run_dir, timeout_s=0.5), threading.Event())

    assert (outcome.status, outcome.exit_code) == ("timeout", 143)  # SIGTERM
    assert outcome.log_tail[-1] == "[lem] run timeout: harness process stopped"
    assert outcome.duration_s < 10


def test_stop_kills_a_process_that_ignores_sigterm(fake_python: str, tmp_path: Path, run_dir: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.8, stop.set).start()

    outcome = _runtime(fake_python, tmp_path, "stubborn").run(_spec(run_dir), stop)

    assert (outcome.status, outcome.exit_code) == ("interrupted", 137)  # SIGKILL after the grace period
    assert "ignoring SIGTERM" in outcome.log_tail
    assert not (run_dir / "result.json").exists()


def test_check_refuses_a_python_without_the_harness(tmp_path: Path) -> None:
    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named lem_harness' >&2\nexit 1\n")
    bare.chmod(0o755)

    with pytest.raises(LemRuntimeError, match="cannot import lem_harness"):
        LocalRuntime(str(bare)).check([])


def test_check_accepts_this_interpreter() -> None:
    LocalRuntime().check([])


def test_path_map_prefers_the_longest_target(tmp_path: Path) -> None:
    paths = PathMap(
        (Mount("/host/run", "/lem/run", False, "bind"), Mount("cachevol", "/lem/run/cache", False, "volume")),
        tmp_path,
    )
    assert paths.host("/lem/run/result.json") == "/host/run/result.json"
    assert paths.host("/lem/run/cache/x") == f"{tmp_path}/cachevol/x"
    assert paths.host("/elsewhere") == "/elsewhere"

"""``python -m lem_harness run``: exit codes, messages without tracebacks, results written on failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lem_harness.cli import main
from lem_harness.contract import RunResult, RunSpec, config_hash
from lem_harness.experiment import ExperimentConfig

REPO = Path(__file__).resolve().parents[3]


def _spec(model: str, **changes: Any) -> RunSpec:
    data: dict[str, Any] = {
        "model_name": model,
        "fp_precision": "float32",
        "max_input_tokens": 16,
        "max_output_tokens": 4,
        "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 8},
        "measurement": {"device": "simulated"},
        "baseline": {"method": "fresh", "duration_seconds": 1.0},
        "warmup": {"enabled": False},
    }
    data.update(changes)
    config = ExperimentConfig.model_validate(data)
    return RunSpec(run_id="cli-c01", config_id=config_hash(config), config_name="cli", config=config)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _harness(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "images" / "harness"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lem_harness", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


# ---- bad specs: exit 2, a message, no traceback, no result


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"run_id": "x",\n  "config_id": }', "spec.json:2: not valid JSON"),
        (
            '{"run_id": "x", "config_id": "a", "config_name": "n", "config": {"model_name": "m", "bogus": 1}}',  # noqa: E501
            "config.bogus: Extra inputs are not permitted",
        ),
        ('{"run_id": "x", "config_id": "a", "config_name": "n"}', "config: Field required"),
        ('{"schema_version": "9.0.0", "run_id": "x"}', "spec schema_version 9.0.0 is not readable"),
    ],
)
def test_a_bad_spec_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    spec = _write(tmp_path / "spec.json", content)
    assert main(["run", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "result.json").exists()


def test_a_missing_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--spec", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    assert "nope.json: cannot read the spec" in capsys.readouterr().err


def test_missing_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--spec", "x.json"])
    assert caught.value.code == 2
    assert "--out" in capsys.readouterr().err


# ---- real subprocesses on the tiny model


def test_a_failed_run_exits_1_and_writes_a_failed_result(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = _spec(str(tiny_model_dir), prompts={"type": "file", "path": str(tmp_path / "missing.jsonl")})
    path = _write(tmp_path / "spec.json", spec.model_dump_json())
    proc = _harness("run", "--spec", str(path), "--out", str(tmp_path / "out"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    result = RunResult.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "DatasetError"
    assert "missing.jsonl: no such file" in result.error.message
    assert (tmp_path / "out" / "timeline.csv").exists()


def test_sigterm_mid_run_still_writes_a_failed_result(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = _spec(str(tiny_model_dir), baseline={"method": "fresh", "duration_seconds": 60.0})
    path = _write(tmp_path / "spec.json", spec.model_dump_json())
    proc = _harness("run", "--spec", str(path), "--out", str(tmp_path / "out"))
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until the baseline has begun
        if "prompts:" in proc.stderr.readline():
            break
    time.sleep(1.5)  # a few baseline samples (5 Hz)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 1
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["status"] == "failed"
    assert saved["error"]["type"] == "RunInterrupted"
    assert "SIGTERM" in saved["error"]["message"]
    timeline = (tmp_path / "out" / "timeline.csv").read_text().splitlines()
    assert any(",baseline," in row for row in timeline[1:])

"""The sbatch template: options from the validated section; every string in the body shell-quoted.

The hostile test runs the rendered script with bash (no Slurm needed): a fake interpreter whose
path and lane file are full of shell syntax receives exactly its arguments, nothing gets executed.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from lem.config.slurm import SlurmConfig
from lem.runtime.slurm_script import LaneJob, render_script, sbatch_options

HOSTILE = 'we\'ird $(touch PWNED) `touch PWNED2` ; "q" & $HOME \\ *'


def job(tmp: Path, python: str = "/usr/bin/python3", gpus: int = 1) -> LaneJob:
    return LaneJob(
        job_name="lem-demo-12345678-lane-00",
        lane_name="lane-00",
        lane_file=tmp / "slurm" / "lane-00.json",
        slurm_dir=tmp / "slurm",
        python=python,
        time_minutes=35,
        gpus=gpus,
    )


def test_options_in_a_fixed_order(tmp_path: Path) -> None:
    cfg = SlurmConfig.model_validate(
        {
            "partition": "gpu",
            "account": "lab-1",
            "qos": "normal",
            "constraint": "a100|h100",
            "exclusive": True,
            "extra_sbatch": ["--mem=64G"],
        }
    )
    assert sbatch_options(job(tmp_path, gpus=2), cfg) == [
        "--job-name=lem-demo-12345678-lane-00",
        "--output=lane-00.out",
        "--nodes=1",
        "--ntasks=1",
        "--time=35",
        "--gres=gpu:2",
        "--partition=gpu",
        "--account=lab-1",
        "--qos=normal",
        "--constraint=a100|h100",
        "--exclusive",
        "--mem=64G",
    ]
    assert "--gres" not in " ".join(sbatch_options(job(tmp_path, gpus=0), SlurmConfig()))


def test_the_script_starts_with_its_sbatch_lines(tmp_path: Path) -> None:
    lines = render_script(job(tmp_path), SlurmConfig()).splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines[1:6] == [
        "#SBATCH --job-name=lem-demo-12345678-lane-00",
        "#SBATCH --output=lane-00.out",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --time=35",
    ]


def test_hostile_paths_reach_the_interpreter_verbatim(tmp_path: Path) -> None:
    weird = tmp_path / HOSTILE
    (weird / "slurm").mkdir(parents=True)
    fake_python = weird / "python"
    argv_file = tmp_path / "argv"
    fake_python.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {argv_file}\nexit 3\n')
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    script = render_script(job(weird, python=str(fake_python)), SlurmConfig())
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    done = subprocess.run(
        ["bash", "-s"],
        input=script,
        text=True,
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ},
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert argv_file.read_text().splitlines() == [
        "-m",
        "lem",
        "campaign",
        "lane",
        str(weird / "slurm/lane-00.json"),
    ]
    assert (weird / "slurm" / "lane-00.exit").read_text() == "3\n"  # the exit file the orchestrator reads
    assert not list(tmp_path.rglob("PWNED*"))

"""Collect a wheelhouse with ``scripts/build_wheelhouse.sh`` (the one recipe, shared with ``make``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lem.runtime.bundle import WheelhouseMaker
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import Flavour, wheelhouse_name

SCRIPT = "scripts/build_wheelhouse.sh"


def script_wheelhouse(repo_root: Path, python: str = sys.executable) -> WheelhouseMaker:
    """A ``WheelhouseMaker`` that runs the script for the image's Python (its output goes to stderr)."""

    def make(backend: str, flavour: Flavour, target_python: str) -> Path:
        env = {**os.environ, "PYTHON": python, "LEM_WHEEL_PYTHON": target_python}
        command = [str(repo_root / SCRIPT), backend, flavour]
        done = subprocess.run(command, env=env, stdout=sys.stderr, check=False)
        if done.returncode != 0:
            raise LemRuntimeError(
                f"{SCRIPT} {backend} {flavour} failed (exit {done.returncode})",
                "see its output above; is the package index reachable?",
            )
        return repo_root / "wheelhouse" / wheelhouse_name(backend, flavour)

    return make

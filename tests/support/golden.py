"""The golden results trees (tests/data/golden_results), and copies of them changed for a test."""

from __future__ import annotations

import shutil
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_results"


def simulated_copy(name: str, out: Path) -> Path:
    """A copy of golden campaign ``name`` whose energy figures all say ``energy_source: simulated``."""
    target = out / name
    shutil.copytree(GOLDEN / name, target)
    changed = 0
    for result in target.rglob("result.json"):
        text = result.read_text(encoding="utf-8")
        changed += '"energy_source": "nvml_counter"' in text
        result.write_text(text.replace('"energy_source": "nvml_counter"', '"energy_source": "simulated"'))
    assert changed, f"no measured energy in {name}"
    return target

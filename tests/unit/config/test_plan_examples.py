"""The plan's four example files, word for word, are schema 3.0.0: they validate with no notice.

``tests/data/plan_examples/`` holds them exactly as the plan prints them; ``configs/examples/``
carries the same keys and values with more comments.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PLAN = REPO.parent / "shared" / "reference" / "seed-plan-02.4-02.txt"
FIXTURES = REPO / "tests" / "data" / "plan_examples"
EXAMPLES = REPO / "configs" / "examples"
NAMES = ("pytorch_example.yaml", "vllm_example.yaml", "tensorrt_example.yaml", "campaign_example.yaml")


def lem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lem", *args], capture_output=True, text=True, check=False)


@pytest.mark.skipif(not PLAN.is_file(), reason="the plan is kept beside the repository (../shared)")
def test_fixtures_are_the_plans_text_word_for_word() -> None:
    text = PLAN.read_text()
    found = dict(re.findall(r"\*\*(\w+_example\.yaml):\*\*\n```yaml\n(.*?)```", text, flags=re.S))
    assert sorted(found) == sorted(NAMES)
    for name, body in found.items():
        assert (FIXTURES / name).read_text() == body, name


@pytest.mark.parametrize("name", NAMES)
def test_plan_example_validates_strictly_with_no_notice(name: str) -> None:
    done = lem("config", "validate", "--strict", str(FIXTURES / name))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SCHEMA_VERSION" not in done.stdout and "DEPRECATED_KEY" not in done.stdout
    assert done.stdout.startswith("valid ")


def test_plan_campaign_plans_36_runs() -> None:
    done = lem("campaign", "plan", "--json", str(FIXTURES / "campaign_example.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no schema or deprecation notice
    plan = json.loads(done.stdout)
    assert len(plan["runs"]) == 36
    assert {r["backend"] for r in plan["runs"]} == {"pytorch", "vllm"}


def _data(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", NAMES)
def test_configs_examples_carry_the_plans_keys_and_values(name: str) -> None:
    assert _data(EXAMPLES / name) == _data(FIXTURES / name)


def test_torch_compile_inductor_as_the_plans_comment_says() -> None:
    from lem_harness.engines.pytorch import compile_kwargs
    from lem_harness.experiment import ExperimentConfig

    def section(value: object, backend: str | None = None) -> Any:
        cfg = ExperimentConfig.model_validate(
            {"model_name": "m", "pytorch": {"torch_compile": value, "torch_compile_backend": backend}}
        )
        assert cfg.pytorch is not None
        return cfg.pytorch

    assert compile_kwargs(section(False)) is None
    assert compile_kwargs(section("inductor")) == {"mode": None, "backend": "inductor"}
    assert compile_kwargs(section(True)) == {"mode": None, "backend": "inductor"}
    assert compile_kwargs(section("max-autotune", "cudagraphs")) == {
        "mode": "max-autotune",
        "backend": "cudagraphs",
    }
    with pytest.raises(ValueError, match=r"names the backend 'inductor' but pytorch\.torch_compile_backend"):
        section("inductor", "cudagraphs")

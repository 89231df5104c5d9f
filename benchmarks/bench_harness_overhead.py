#!/usr/bin/env python3
"""Harness overhead: output tokens/s through the harness vs a bare ``model.generate`` loop.

Both arms run in this process on CPU with the same model, prompts (seeded synthetic token
ids), batches (static, dataset order), padding and generation settings (greedy,
fixed-length outputs). The harness arm is ``lem_harness.runner.run`` with its full
apparatus on: the simulated GPU with a 10 Hz sampler thread, energy windows, baseline,
warmup, result and timeline files; its figure is the measured window's output tokens/s.
The bare arm times the same batches with nothing around them. Arms alternate for
``--rounds`` rounds; the figure of merit is the median per-round ratio (target >= 0.97).

    .venv/bin/python benchmarks/bench_harness_overhead.py [--rounds 5] [--model DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "images" / "harness")]

from lem_harness.contract import RunSpec, config_hash  # noqa: E402
from lem_harness.datasets.synthetic import synthetic_prompts  # noqa: E402
from lem_harness.engines.batching import static_batches  # noqa: E402
from lem_harness.experiment import ExperimentConfig  # noqa: E402
from lem_harness.prompt_sources import SyntheticPrompts  # noqa: E402
from lem_harness.runner import run  # noqa: E402


def build_bench_model(path: Path) -> Path:
    """A random Llama of ~13 M parameters (hidden 512, 4 layers): compute-bound enough on CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=4,
        num_attention_heads=8,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def experiment(model: Path, args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "model_name": str(model),
            "fp_precision": "float32",
            "max_input_tokens": args.input_len,
            "max_output_tokens": args.output_tokens,
            "min_output_tokens": args.output_tokens,
            "prompts": {"type": "synthetic", "sample_size": args.prompts, "input_len": args.input_len},
            "measurement": {"device": "simulated"},
            "baseline": {"method": "fresh", "duration_seconds": 1.0},
            "timeseries": {"sample_rate_hz": 10.0},
            "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": args.batch_size},
            "pytorch": {"batch_size": args.batch_size, "batching_strategy": "static"},
        }
    )


class BareLoop:
    """The same batches through ``model.generate`` with nothing around them."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        self.torch = torch
        tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model_name, dtype=torch.float32)
        assert isinstance(cfg.prompts, SyntheticPrompts)
        prompts = synthetic_prompts(
            cfg.prompts, cfg.prompt_count, len(tokenizer), set(tokenizer.all_special_ids), cfg.random_seed
        )
        pad = tokenizer.pad_token_id
        self.batches = []
        for batch in static_batches(len(prompts), cfg.backend_section().batch_size):  # type: ignore[attr-defined]
            rows = [prompts[i] for i in batch]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            self.batches.append((ids, mask))
        self.gen = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=cfg.max_output_tokens,
            min_new_tokens=cfg.min_output_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
        self.tokens = len(prompts) * cfg.max_output_tokens

    def tokens_per_s(self, clock: Callable[[], float]) -> float:
        start = clock()
        with self.torch.inference_mode():
            for ids, mask in self.batches:
                self.model.generate(input_ids=ids, attention_mask=mask, generation_config=self.gen)
        return self.tokens / (clock() - start)


def harness_tokens_per_s(
    cfg: ExperimentConfig, out: Path, round_no: int, clock: Callable[[], float]
) -> tuple[float, int]:
    spec = RunSpec(run_id=f"bench-r{round_no}", config_id=config_hash(cfg), config_name="bench", config=cfg)
    result = run(spec, out / spec.run_id, clock=clock)
    if result.status != "ok" or result.metrics is None:
        raise SystemExit(f"harness run failed: {result.error}")
    return result.metrics.output_tokens_per_s, result.metrics.output_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: a random 13 M Llama)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a busy box steady)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: tokens per wall second; cpu: per second of process CPU time (all threads, the sampler's "
        "too), steady on a shared machine",
    )
    args = parser.parse_args(argv)

    import logging

    import torch

    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="lem-bench-") as tmp:
        model = args.model or build_bench_model(Path(tmp) / "model")
        cfg = experiment(model, args)
        bare = BareLoop(cfg)
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        bare.tokens_per_s(clock)  # warm the bare arm once (the harness warms itself in its warmup phase)
        rows: list[dict[str, Any]] = []
        for round_no in range(1, args.rounds + 1):
            bare_tps = bare.tokens_per_s(clock)
            harness_tps, tokens = harness_tokens_per_s(cfg, Path(tmp), round_no, clock)
            assert tokens == bare.tokens, (tokens, bare.tokens)
            rows.append(
                {"round": round_no, "bare": bare_tps, "harness": harness_tps, "ratio": harness_tps / bare_tps}
            )
            print(
                f"round {round_no}: bare {bare_tps:8.1f} tok/s  harness {harness_tps:8.1f} tok/s  "
                f"ratio {harness_tps / bare_tps:.3f}",
                flush=True,
            )
    ratio = statistics.median(r["ratio"] for r in rows)
    verdict = "PASS" if ratio >= 0.97 else "FAIL"
    print(
        f"\n{bare.tokens} output tokens per arm per round, batch size {args.batch_size}, "
        f"{args.threads} thread(s), {args.clock} clock; median ratio {ratio:.3f} (target >= 0.97): {verdict}"
    )
    return 0 if ratio >= 0.97 else 1


if __name__ == "__main__":
    raise SystemExit(main())

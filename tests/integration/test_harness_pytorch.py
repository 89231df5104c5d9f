"""The real harness as a subprocess on a tiny random model (CPU, simulated GPU): exact relations.

Output tokens are checked against an independent ``model.generate`` of the same prompts;
energy figures against each other and the timeline; the warmup record against its config.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import TIMELINE_COLUMNS, RunResult, RunSpec, config_hash
from lem_harness.cpus import usable_cpus
from lem_harness.datasets.synthetic import synthetic_prompts
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import SyntheticPrompts
from tests.support.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RATE_HZ = 20.0
BASELINE_S = 2.0


@pytest.fixture(scope="module")
def eos_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with EOS made likely, so that outputs end at varied lengths."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-eos"), eos_scale=3.0)


def _run_harness(tmp_path: Path, **config: Any) -> tuple[RunResult, Path]:
    cfg = ExperimentConfig.model_validate(
        {
            "fp_precision": "float32",
            "measurement": {"device": "simulated"},
            "baseline": {"method": "fresh", "duration_seconds": BASELINE_S},
            "timeseries": {"sample_rate_hz": RATE_HZ},
            **config,
        }
    )
    spec = RunSpec(run_id="it-c01", config_id=config_hash(cfg), config_name="it", config=cfg)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.model_dump_json(), encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "images" / "harness"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lem_harness", "run", "--spec", str(spec_path), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return RunResult.model_validate_json((out / "result.json").read_text()), out


def _independent_output_tokens(
    model_dir: Path, dataset: SyntheticPrompts, seed: int, max_new: int
) -> tuple[int, int]:
    """(input tokens, output tokens) of a plain greedy ``generate`` per prompt, no padding at all."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    prompts = synthetic_prompts(
        dataset, dataset.sample_size or 0, len(tokenizer), set(tokenizer.all_special_ids), seed
    )
    out_tokens = 0
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            out_tokens += out.shape[1] - ids.shape[1]
    return sum(len(p) for p in prompts), out_tokens


def _timeline(out: Path) -> list[dict[str, str]]:
    with (out / "timeline.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == TIMELINE_COLUMNS
        return list(reader)


def test_tokens_energy_timeline_and_warmup_of_a_real_run(eos_model: Path, tmp_path: Path) -> None:
    dataset = SyntheticPrompts(
        type="synthetic",
        sample_size=24,
        input_len_distribution="uniform",
        input_len_min=8,
        input_len_max=24,
    )
    result, out = _run_harness(
        tmp_path,
        model_name=str(eos_model),
        random_seed=11,
        max_input_tokens=32,
        max_output_tokens=24,
        prompts=dataset.model_dump(),
        streaming=True,
        warmup={"mode": "fixed", "min_prompts": 0, "max_prompts": 4},
        pytorch={"batch_size": 1},
    )
    assert result.status == "ok"
    m, e = result.metrics, result.energy
    assert m is not None and e is not None

    # tokens counted = tokens generated (independently, prompt by prompt)
    input_tokens, output_tokens = _independent_output_tokens(eos_model, dataset, seed=11, max_new=24)
    assert (m.num_prompts, m.input_tokens, m.output_tokens) == (24, input_tokens, output_tokens)
    assert output_tokens < 24 * 24  # some prompts ended at EOS: padding/after-EOS ids were not counted
    assert m.output_tokens_per_s == pytest.approx(m.output_tokens / m.duration_s, rel=1e-12)
    assert m.total_tokens_per_s == pytest.approx((m.input_tokens + m.output_tokens) / m.duration_s, rel=1e-12)
    assert (
        m.ttft_mean_s is not None and m.itl_mean_s is not None and 0 < m.ttft_mean_s < m.batch_latency_p99_s
    )

    # the CPU threads torch was given: what this process may use, not the machine's CPU count
    assert result.provenance is not None and result.provenance.cpu_threads == usable_cpus()

    # energy relations
    assert e.energy_source == "simulated"
    assert e.gross_energy_j is not None and e.integrated_energy_j is not None and e.idle_power_w is not None
    assert e.window_duration_s == m.duration_s
    assert e.gross_energy_j == pytest.approx(sum(g.counter_energy_j or 0.0 for g in e.per_gpu), rel=1e-12)
    # the sampled power follows the harness's CPU load, linear between readings: the samples'
    # trapezoid matches the counter but for the window's edge readings (which are no samples)
    assert e.integrated_energy_j == pytest.approx(e.gross_energy_j, rel=0.02)
    assert e.adjusted_energy_j == pytest.approx(
        e.gross_energy_j - e.idle_power_w * e.window_duration_s, rel=1e-9
    )
    assert e.avg_power_w == pytest.approx(e.gross_energy_j / e.window_duration_s, rel=1e-12)
    assert e.energy_per_output_token_j == pytest.approx(e.gross_energy_j / m.output_tokens, rel=1e-12)
    assert 60.0 <= e.idle_power_w <= 100.0  # 60 W + 240 W × the CPU share, which idles near 0
    assert e.avg_power_w > e.idle_power_w  # the window works: more CPU, more simulated power

    # warmup and phases
    assert result.warmup is not None
    assert (result.warmup.mode, result.warmup.iterations, result.warmup.prompts) == ("fixed", 4, 4)
    assert [p.name for p in result.phases] == ["baseline", "load", "warmup", "ready_idle", "measure"]
    assert "SIMULATED_ENERGY" in [f.code for f in result.flags]
    assert (result.warmup.prompts_disjoint, result.warmup.prefix_cache_reset) == (True, None)
    assert e.idle_power_kind == "ready" and result.baseline is not None
    assert e.idle_power_w == result.baseline.ready_idle_power_w

    # the timeline: one row per tick, labelled by phase, in time order
    rows = _timeline(out)
    times = [float(r["t_s"]) for r in rows]
    assert times == sorted(times)
    baseline_rows = [r for r in rows if r["phase"] == "baseline"]
    assert BASELINE_S * RATE_HZ - 4 <= len(baseline_rows) <= BASELINE_S * RATE_HZ + 1
    assert {r["gpu_uuid"] for r in rows} == {"GPU-SIMULATED-0"}
    assert all(60.0 <= float(r["power_w"]) <= 300.0 for r in rows)  # 60 W + 240 W × u, u in [0, 1]
    assert result.baseline is not None and result.baseline.samples == len(baseline_rows)


def test_fixed_length_outputs_with_dynamic_batches(tiny_model_dir: Path, tmp_path: Path) -> None:
    result, _ = _run_harness(
        tmp_path,
        model_name=str(tiny_model_dir),
        max_input_tokens=64,
        max_output_tokens=12,
        min_output_tokens=12,  # min == max: EOS is ignored, every output is exactly 12 tokens
        prompts={
            "type": "synthetic",
            "sample_size": 10,
            "input_len_distribution": "uniform",
            "input_len_min": 4,
            "input_len_max": 40,
        },
        warmup={
            "mode": "convergence",
            "min_prompts": 2,
            "max_prompts": 6,
            "window_size": 2,
            "target_cv": 1.0,
        },
        pytorch={"batch_size": 4, "batching_strategy": "dynamic"},
    )
    m = result.metrics
    assert m is not None
    assert (m.num_prompts, m.num_batches, m.output_tokens) == (10, 3, 120)
    assert result.warmup is not None
    # steps of max_prompts // window_size = 3 prompts (the engine's batches hold 4): two steps fill
    # the 2-latency window, whose CV is below 1.0 for any two positive latencies
    assert (result.warmup.iterations, result.warmup.prompts, result.warmup.converged) == (2, 6, True)

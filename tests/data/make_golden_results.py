"""Generate the golden results trees under tests/data/golden_results/ from the contract models.

    python tests/data/make_golden_results.py [OUT_DIR]

Every result.json is built as a ``RunResult`` and serialised by pydantic, so the files
follow the contract of this checkout; ``test_golden_data.py`` fails when the committed
files differ from what this script writes. The trees:

- ``alpha`` (with manifest.json): three configurations x 3 cycles; one failed run, one
  corrupt result.json, one result of an old contract version (0.9.0), a THROTTLING and a
  SHORT_WINDOW flag, TTFT/ITL on the vLLM runs, a timeline.csv, and in the manifest one
  run that left no result (OOM) and one gap that ended at its cap.
- ``beta`` (no manifest): two configurations x 3 cycles with idle-power drift between
  cycles, a third cycle on another GPU model and driver, a high-CV configuration, and a
  stray result of an unknown future contract version (2.0.0) without a spec.
- ``gamma`` (no manifest): a 3 x 2 grid (batch size x precision) x 2 cycles for group_by,
  plus one ``ok`` result without inference metrics (invalid).

Energy fields are consistent: gross = avg_power_w x duration_s, adjusted = gross -
idle_power_w x duration_s, J/token = gross / output_tokens.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lem_harness.contract import (
    CONTRACT_VERSION,
    BaselineMetrics,
    EnergyMetrics,
    ErrorInfo,
    Flag,
    GpuEnergy,
    GpuInfo,
    InferenceMetrics,
    Phase,
    Provenance,
    RunResult,
    RunSpec,
    SetupMetrics,
    WarmupMetrics,
    config_hash,
)
from lem_harness.experiment import ExperimentConfig

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "golden_results"
T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
A100 = ("NVIDIA A100-SXM4-80GB", "550.54.15", "GPU-0a1b2c3d-0000-4000-8000-00000000a100")
H100 = ("NVIDIA H100 80GB HBM3", "555.42.02", "GPU-0a1b2c3d-0000-4000-8000-00000000h100")
PROMPTS = 10
TOKENS_PER_PROMPT = 128
INPUT_TOKENS = 10 * 256


@dataclass
class Run:
    """One planned run and the numbers it produced."""

    campaign: str
    config: str  # key into CONFIGS
    cycle: int
    duration_s: float = 10.0
    avg_power_w: float = 200.0
    idle_power_w: float = 60.0
    output_tokens: int = PROMPTS * TOKENS_PER_PROMPT
    status: str = "ok"  # ok | failed | corrupt | old | no_metrics
    flags: tuple[str, ...] = ()
    gpu: tuple[str, str, str] = A100
    ttft_s: float | None = None
    itl_s: float | None = None
    timeline: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def _config(name: str, backend: str, precision: str = "float16", **section: object) -> ExperimentConfig:
    data: dict[str, object] = {
        "config_name": name,
        "model_name": "tiny-random/llama-mini",
        "backend": backend,
        "fp_precision": precision,
        "max_output_tokens": TOKENS_PER_PROMPT,
        "prompts": {"type": "synthetic", "sample_size": PROMPTS, "input_len": 256},
        backend: section,
    }
    return ExperimentConfig.model_validate(data)


CONFIGS: dict[str, ExperimentConfig] = {
    "pytorch-bs1-float16": _config("pytorch-bs1-float16", "pytorch", batch_size=1),
    "pytorch-bs4-float16": _config("pytorch-bs4-float16", "pytorch", batch_size=4),
    "pytorch-bs8-float16": _config("pytorch-bs8-float16", "pytorch", batch_size=8),
    "vllm-float16": _config("vllm-float16", "vllm", max_num_seqs=64),
    **{
        f"grid-bs{bs}-{p}": _config(f"grid-bs{bs}-{p}", "pytorch", p, batch_size=bs)
        for bs in (1, 2, 4)
        for p in ("float16", "bfloat16")
    },
}


def _alpha() -> list[Run]:
    return [
        Run("alpha", "pytorch-bs1-float16", 1, 20.0, 200.0, timeline=True),
        Run("alpha", "pytorch-bs4-float16", 1, 8.0, 300.0, flags=("THROTTLING",)),
        Run("alpha", "vllm-float16", 1, 4.0, 350.0, flags=("SHORT_WINDOW",), ttft_s=0.05, itl_s=0.010),
        Run("alpha", "pytorch-bs1-float16", 2, 21.0, 200.0),
        Run("alpha", "pytorch-bs4-float16", 2, status="failed"),
        Run("alpha", "vllm-float16", 2, 4.2, 340.0, ttft_s=0.06, itl_s=0.012),
        Run("alpha", "pytorch-bs1-float16", 3, 20.5, 205.0, status="old"),
        Run("alpha", "pytorch-bs4-float16", 3, 8.5, 290.0),
        Run("alpha", "vllm-float16", 3, 4.1, 345.0, status="corrupt"),
    ]


def _beta() -> list[Run]:
    idle = {1: 60.0, 2: 68.0, 3: 70.0}  # 13.3 % drift between cycles 1 and 2 on the A100
    bs1 = {1: (18.0, 210.0), 2: (19.0, 205.0), 3: (25.0, 200.0)}  # high CV
    bs4 = {1: (7.5, 310.0), 2: (7.6, 305.0), 3: (7.4, 300.0)}
    runs = []
    for cycle in (1, 2, 3):
        gpu = H100 if cycle == 3 else A100
        runs.append(Run("beta", "pytorch-bs1-float16", cycle, *bs1[cycle], idle[cycle], gpu=gpu))
        runs.append(Run("beta", "pytorch-bs4-float16", cycle, *bs4[cycle], idle[cycle], gpu=gpu))
    return runs


def _gamma() -> list[Run]:
    runs = []
    for cycle in (1, 2):
        for bs in (1, 2, 4):
            for p in ("float16", "bfloat16"):
                duration = round(
                    24.0 / bs * (1.0 + 0.05 * (cycle - 1)) * (0.9 if p == "bfloat16" else 1.0), 6
                )
                power = 150.0 + 40.0 * bs + (10.0 if p == "bfloat16" else 0.0)
                runs.append(Run("gamma", f"grid-bs{bs}-{p}", cycle, duration, power))
    runs.append(Run("gamma", "grid-bs4-bfloat16", 3, status="no_metrics"))
    return runs


# --------------------------------------------------------------------------- building


def run_id(run: Run) -> str:
    return f"{run.config}-c{run.cycle:02d}"


def _stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _phases(run: Run) -> list[Phase]:
    return [
        Phase(name="baseline", start_s=0.0, end_s=30.0),
        Phase(name="load", start_s=30.0, end_s=35.0),
        Phase(name="warmup", start_s=35.0, end_s=45.0),
        Phase(name="measure", start_s=45.0, end_s=45.0 + run.duration_s),
    ]


def _metrics(run: Run) -> InferenceMetrics:
    return InferenceMetrics(
        num_prompts=PROMPTS,
        num_batches=PROMPTS,
        input_tokens=INPUT_TOKENS,
        output_tokens=run.output_tokens,
        duration_s=run.duration_s,
        output_tokens_per_s=run.output_tokens / run.duration_s,
        total_tokens_per_s=(run.output_tokens + INPUT_TOKENS) / run.duration_s,
        batch_latency_p50_s=run.duration_s / PROMPTS,
        batch_latency_p90_s=run.duration_s / PROMPTS * 1.1,
        batch_latency_p99_s=run.duration_s / PROMPTS * 1.2,
        ttft_mean_s=run.ttft_s,
        ttft_p50_s=run.ttft_s,
        ttft_p99_s=None if run.ttft_s is None else run.ttft_s * 2,
        itl_mean_s=run.itl_s,
        itl_p50_s=run.itl_s,
        itl_p99_s=None if run.itl_s is None else run.itl_s * 3,
        peak_memory_bytes=2_000_000_000,
    )


def _energy(run: Run) -> EnergyMetrics:
    gross = run.avg_power_w * run.duration_s
    adjusted = gross - run.idle_power_w * run.duration_s
    return EnergyMetrics(
        energy_source="nvml_counter",
        gross_energy_j=gross,
        integrated_energy_j=gross * 0.99,
        counter_vs_integral_pct=1.0,
        idle_power_w=run.idle_power_w,
        adjusted_energy_j=adjusted,
        window_duration_s=run.duration_s,
        avg_power_w=run.avg_power_w,
        energy_per_output_token_j=gross / run.output_tokens,
        adjusted_energy_per_output_token_j=adjusted / run.output_tokens,
        output_tokens_per_j=run.output_tokens / gross,
        sample_coverage=1.0,
        per_gpu=[GpuEnergy(gpu_uuid=run.gpu[2], counter_energy_j=gross, integrated_energy_j=gross * 0.99)],
    )


def _provenance(run: Run, config: ExperimentConfig) -> Provenance:
    name, driver, uuid = run.gpu
    return Provenance(
        harness_version="0.1.0",
        python_version="3.11.7",
        packages={"torch": "2.5.1", "transformers": "4.46.3"}
        if config.backend == "pytorch"
        else {"vllm": "0.6.4"},
        cuda_version="12.4",
        driver_version=driver,
        gpus=[
            GpuInfo(
                index=0,
                uuid=uuid,
                name=name,
                driver_version=driver,
                power_limit_w=400.0,
                supports_energy_counter=True,
            )
        ],
        hostname="node-01",
        config_hash=config_hash(config),
        random_seed=config.random_seed,
        device_kind="nvml",
    )


_FLAG_MESSAGES = {
    "THROTTLING": "clocks were throttled (SW power cap) during the measured window",
    "SHORT_WINDOW": "the measured window lasted 4.0 s (< 10 s): energy counter resolution matters",
}


def build_result(run: Run, position: int) -> RunResult:
    config = CONFIGS[run.config]
    ok = run.status in ("ok", "old", "corrupt")
    start = position * 120.0
    return RunResult(
        run_id=run_id(run),
        campaign_id=f"{run.campaign}-0001",
        config_id=config_hash(config),
        config_name=run.config,
        cycle=run.cycle,
        backend=config.backend,
        status="ok" if run.status != "failed" else "failed",
        error=ErrorInfo(type="OutOfMemoryError", message="CUDA out of memory")
        if run.status == "failed"
        else None,
        started_at=_stamp(start),
        finished_at=_stamp(start + 45.0 + run.duration_s),
        config=config,
        metrics=_metrics(run) if ok else None,
        energy=_energy(run) if ok else None,
        setup=SetupMetrics(load_duration_s=5.0, load_energy_j=450.0),
        warmup=WarmupMetrics(
            mode="convergence", iterations=6, prompts=6, duration_s=10.0, final_cv=0.03, converged=True
        ),
        baseline=BaselineMetrics(
            idle_power_w=run.idle_power_w,
            duration_s=30.0,
            samples=150,
            per_gpu_idle_power_w={run.gpu[2]: run.idle_power_w},
            idle_temperature_c={run.gpu[2]: 34.0},
        ),
        phases=_phases(run),
        flags=[Flag(code=c, message=_FLAG_MESSAGES[c]) for c in run.flags],
        timeline_file="timeline.csv" if run.timeline else None,
        provenance=_provenance(run, config),
    )


def timeline_csv(run: Run) -> str:
    """2 Hz samples over the phases of ``_phases``; SW power cap (0x4) at 50.0-51.5 s."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "t_s",
            "unix_time_s",
            "phase",
            "gpu_index",
            "gpu_uuid",
            "power_w",
            "temperature_c",
            "sm_clock_mhz",
            "memory_used_bytes",
            "utilization_pct",
            "throttle_reasons",
        ]
    )
    levels = {"baseline": (60.0, 0), "load": (90.0, 20), "warmup": (250.0, 90), "measure": (300.0, 99)}
    for i in range(int((45.0 + run.duration_s) * 2) + 1):
        t = i / 2
        phase = next(p.name for p in reversed(_phases(run)) if t >= p.start_s)
        power, util = levels[phase]
        throttle = 4 if 50.0 <= t <= 51.5 else 0
        writer.writerow(
            [
                f"{t:.1f}",
                f"{T0.timestamp() + t:.1f}",
                phase,
                0,
                run.gpu[2],
                f"{power + (i % 3):.1f}",
                f"{34 + t / 10:.1f}",
                1410 if not throttle else 1200,
                2_000_000_000,
                util,
                throttle,
            ]
        )
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_run(out: Path, run: Run, position: int) -> None:
    result = build_result(run, position)
    run_dir = out / run.campaign / result.run_id
    spec = RunSpec(
        run_id=result.run_id,
        campaign_id=result.campaign_id,
        config_id=result.config_id,
        config_name=result.config_name,
        cycle=run.cycle,
        config=CONFIGS[run.config],
    )
    _write(run_dir / "spec.json", spec.model_dump_json(indent=2) + "\n")
    text = result.model_dump_json(indent=2) + "\n"
    if run.status == "old":
        text = text.replace(f'"schema_version": "{CONTRACT_VERSION}"', '"schema_version": "0.9.0"', 1)
    if run.status == "corrupt":
        text = text[: len(text) // 2]  # a result cut short, e.g. by a full disk
    _write(run_dir / "result.json", text)
    if run.timeline:
        _write(run_dir / "timeline.csv", timeline_csv(run))


def write_stray_future_result(out: Path) -> None:
    """A result of a contract major this checkout does not know, with no spec beside it."""
    run = Run("beta", "pytorch-bs1-float16", 9, 10.0, 200.0)
    data = json.loads(build_result(run, 99).model_dump_json())
    data["schema_version"] = "99.0.0"
    data["energy"]["energy_joules_v2"] = data["energy"].pop("gross_energy_j")
    _write(out / "beta" / "stray-run" / "result.json", json.dumps(data, indent=2) + "\n")


def alpha_manifest(runs: list[Run]) -> str:
    entries = []
    for position, run in enumerate(runs, start=1):
        config = CONFIGS[run.config]
        status = "failed" if run.status == "failed" else "done"
        entries.append(_manifest_entry(run, position, config, status, "cap" if position == 8 else "fixed"))
    oom = Run("alpha", "pytorch-bs8-float16", 1)
    entries.append(
        _manifest_entry(
            oom,
            len(runs) + 1,
            CONFIGS[oom.config],
            "failed",
            "fixed",
            outcome="oom",
            message="container killed: out of memory",
            result=False,
        )
    )
    configs: dict[str, dict[str, object]] = {
        config_hash(CONFIGS[k]): {"name": k, "backend": CONFIGS[k].backend, "axis_values": {}}
        for k in ("pytorch-bs1-float16", "pytorch-bs4-float16", "vllm-float16", "pytorch-bs8-float16")
    }
    manifest = {
        "schema_version": "1.0.0",
        "campaign_id": "alpha-0001",
        "campaign_name": "alpha",
        "definition_hash": "0123456789abcdef",
        "created_at": _stamp(0),
        "updated_at": _stamp(len(runs) * 120.0 + 200.0),
        "config": {"campaign_name": "alpha"},
        "configs": configs,
        "runs": entries,
    }
    return json.dumps(manifest, indent=2) + "\n"


def _manifest_entry(
    run: Run,
    position: int,
    config: ExperimentConfig,
    status: str,
    gap: str,
    *,
    outcome: str | None = None,
    message: str | None = None,
    result: bool = True,
) -> dict[str, object]:
    return {
        "run_id": run_id(run),
        "position": position,
        "cycle": run.cycle,
        "config_id": config_hash(config),
        "name": run.config,
        "backend": config.backend,
        "status": status,
        "attempts": 1,
        "outcome": outcome or ("ok" if status == "done" else "failed"),
        "message": message,
        "started_at": _stamp(position * 120.0),
        "finished_at": _stamp(position * 120.0 + 60),
        "duration_s": 60.0,
        "gap_waited_s": 0.0 if position == 1 else 60.0,
        "gap_ended_by": "none" if position == 1 else gap,
        "start_temperature_c": {run.gpu[2]: 40.0},
        "result_path": f"{run_id(run)}/result.json" if result else None,
    }


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for runs in (_alpha(), _beta(), _gamma()):
        for position, run in enumerate(runs, start=1):
            write_run(out, run, position)
    write_stray_future_result(out)
    _write(out / "alpha" / "manifest.json", alpha_manifest(_alpha()))


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)

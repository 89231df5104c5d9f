#!/usr/bin/env python3
"""GPU self-check of the harness (``make gpu-check``): one NVIDIA GPU, no network, no Docker, < 8 min.

Steps, each with its own time limit; ``summary.json`` is rewritten after every step, so it
exists (with the step marked ``timeout`` or ``failed``) whatever happens:

1. ``nvml``: per GPU, every NVML reading the harness uses (total-energy counter, instant and
   average power fields, clocks-event reasons, temperature, ...): supported or not, median
   call latency, value; and the energy counter's update period, measured by polling it.
2. ``idle``: idle power with no CUDA context (this process never creates one), then with a
   CUDA context held by a child process: counter and sampled integral side by side.
3. ``burn``: a bf16 matmul burn in a child process; the counter against the 10 Hz integral.
4. ``harness``: ``python -m lem_harness run`` on a randomly initialised Qwen2.5-0.5B-shaped
   model (``configs/gpu_check/qwen2_5_0_5b_config.json``) at two batch sizes, and the vLLM
   engine where vLLM is installed.

It reports NVML figures only: every harness run must say ``energy_source: nvml_counter``
(``LEM_SIMULATED_DEVICE`` is refused); exit 0 when every step is ok, 1 on any problem, 2
when no NVIDIA GPU is visible. ``--cpu-smoke`` runs the same steps on CPU with a tiny model
and the simulated device (a check of the script itself, not of any GPU).

On a host whose Python has only CUDA torch, transformers and nvidia-ml-py: the harness's other
pure-Python dependencies (pydantic and its four) come from ``wheels/gpu-check`` (``make
gpu-check-wheels`` on a connected machine), unpacked into ``<out>/.deps`` at start.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lem_harness.contract import RunResult, RunSpec

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "wheels" / "gpu-check"
sys.path[:0] = [str(REPO), str(REPO / "images" / "harness")]


def unpack_wheels(wheels: Path, target: Path) -> list[str]:
    """Unpack the wheels that fit this Python (pure ones, and the cpXY build of compiled ones)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    unpacked = []
    for wheel in sorted(wheels.glob("*.whl")):
        python_tag = wheel.name.split("-")[-3]
        if python_tag.startswith("cp") and python_tag != tag:
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
        unpacked.append(wheel.name)
    return unpacked


def ensure_harness_deps(out: Path) -> None:
    """pydantic from ``wheels/gpu-check`` when this Python lacks it (an isolated GPU host)."""
    if importlib.util.find_spec("pydantic") is not None:
        return
    target = out / ".deps"
    if not unpack_wheels(WHEELS, target):
        raise SystemExit(
            f"gpu_check: pydantic is not installed and {WHEELS} has no wheels for this Python "
            f"({sys.version.split()[0]}): run `make gpu-check-wheels` on a connected machine and copy "
            "wheels/gpu-check here, or `pip install pydantic`"
        )
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])


def _out_dir(argv: list[str] | None) -> Path:
    args = list(sys.argv[1:] if argv is None else argv)
    return (
        Path(args[args.index("--out") + 1]).resolve() if "--out" in args else REPO / "results" / "gpu-check"
    )


MODEL_CONFIG = REPO / "configs" / "gpu_check" / "qwen2_5_0_5b_config.json"
MAX_DISCREPANCY_PCT = 10.0
MIN_COVERAGE = 0.75


@dataclass(frozen=True)
class Plan:
    batch_sizes: tuple[int, ...]
    prompts: int
    input_tokens: int
    output_tokens: int
    baseline_s: float
    rate_hz: float
    device: str  # nvml | simulated
    precision: str
    probe_s: float  # idle and burn windows


GPU_PLAN = Plan(
    (4, 16),
    prompts=96,
    input_tokens=128,
    output_tokens=96,
    baseline_s=10.0,
    rate_hz=10.0,
    device="nvml",
    precision="bfloat16",
    probe_s=15.0,
)
CPU_SMOKE_PLAN = Plan(  # the tiny model's windows: ~0.5 s at batch 8 on a fast core, several 20 Hz samples
    (2, 8),
    prompts=48,
    input_tokens=16,
    output_tokens=64,
    baseline_s=2.0,
    rate_hz=20.0,
    device="simulated",
    precision="float32",
    probe_s=1.5,
)


def build_gpu_model(out: Path) -> Path:
    """Random Qwen2.5-0.5B-shaped weights (bf16, initialised on CPU so this process holds no CUDA context)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from tests.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    fields = json.loads(MODEL_CONFIG.read_text())
    fields.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = AutoConfig.for_model(**fields)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_smoke_model(out: Path) -> Path:
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(out)


def backend_section(backend: str, batch_size: int, plan: Plan) -> dict[str, Any]:
    if backend == "vllm":
        return {
            "max_num_seqs": batch_size,
            "max_model_len": plan.input_tokens + plan.output_tokens,
            "gpu_memory_utilization": 0.5,
            "enforce_eager": True,
        }
    return {"batch_size": batch_size}


def make_spec(
    model_dir: Path, batch_size: int, plan: Plan, cache_dir: Path, backend: str = "pytorch"
) -> RunSpec:
    from lem_harness.contract import RunSpec, config_hash
    from lem_harness.experiment import ExperimentConfig

    name = f"gpu-check-{'' if backend == 'pytorch' else backend + '-'}bs{batch_size}"
    config = ExperimentConfig.model_validate(
        {
            "config_name": name,
            "model_name": str(model_dir),
            "backend": backend,
            "gpus": [0],
            "max_input_tokens": plan.input_tokens,
            "max_output_tokens": plan.output_tokens,
            "min_output_tokens": plan.output_tokens,  # fixed-length outputs: equal work at every batch size
            "fp_precision": plan.precision,
            "prompts": {"type": "synthetic", "sample_size": plan.prompts, "input_len": plan.input_tokens},
            "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": 2 * batch_size},
            "baseline": {
                "method": "fresh",
                "duration_seconds": plan.baseline_s,
                "ready_duration_seconds": plan.baseline_s / 2,
            },
            "timeseries": {"sample_rate_hz": plan.rate_hz},
            "measurement": {"device": plan.device},
            backend: backend_section(backend, batch_size, plan),
        }
    )
    return RunSpec(
        run_id=name,
        config_id=config_hash(config),
        config_name=config.config_name or "gpu-check",
        config=config,
        baseline_cache_dir=str(cache_dir),
    )


def run_harness(spec: RunSpec, run_dir: Path, timeout_s: float, env: dict[str, str]) -> RunResult | None:
    """One harness run in a subprocess; None when it did not finish within ``timeout_s``."""
    from lem_harness.contract import RESULT_FILE, RunResult
    from lem_harness.fileio import atomic_write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    atomic_write_json(spec_path, spec)
    pythonpath = os.pathsep.join(p for p in (str(REPO / "images" / "harness"), env.get("PYTHONPATH")) if p)
    child_env = {**env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath}
    command = [sys.executable, "-m", "lem_harness", "run", "--spec", str(spec_path), "--out", str(run_dir)]
    with (run_dir / "harness.log").open("w") as log:
        try:
            subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, env=child_env, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return None
    return RunResult.model_validate_json((run_dir / RESULT_FILE).read_text())


def figures(result: RunResult) -> dict[str, Any]:
    m, e = result.metrics, result.energy
    return {
        "run_id": result.run_id,
        "status": result.status,
        "error": result.error.message if result.error else None,
        "batch_size": result.config.pytorch.batch_size if result.config and result.config.pytorch else None,
        "output_tokens": m.output_tokens if m else None,
        "window_s": e.window_duration_s if e else None,
        "output_tokens_per_s": m.output_tokens_per_s if m else None,
        "energy_source": e.energy_source if e else None,
        "counter_energy_j": e.gross_energy_j if e and e.energy_source != "power_integral" else None,
        "integrated_energy_j": e.integrated_energy_j if e else None,
        "counter_vs_integral_pct": e.counter_vs_integral_pct if e else None,
        "idle_power_w": e.idle_power_w if e else None,
        "adjusted_energy_j": e.adjusted_energy_j if e else None,
        "energy_per_output_token_j": e.energy_per_output_token_j if e else None,
        "adjusted_energy_per_output_token_j": e.adjusted_energy_per_output_token_j if e else None,
        "avg_power_w": e.avg_power_w if e else None,
        "sample_coverage": e.sample_coverage if e else None,
        "idle_power_kind": e.idle_power_kind if e else None,
        "deep_idle_power_w": result.baseline.idle_power_w if result.baseline else None,
        "engine_args": result.provenance.engine_args if result.provenance else {},
        "load_duration_s": result.setup.load_duration_s,
        "peak_memory_bytes": m.peak_memory_bytes if m else None,
        "flags": [f.code for f in result.flags],
        "throttling": [f.message for f in result.flags if f.code == "THROTTLING"],
    }


def problems(row: dict[str, Any], energy_source: str) -> list[str]:
    """What is wrong with one run's figures; ``energy_source`` is the only source accepted."""
    if row["status"] != "ok":
        return [f"{row['run_id']}: run {row['status']}: {row['error']}"]
    found = []
    if row["energy_source"] != energy_source:
        found.append(
            f"{row['run_id']}: energy_source {row['energy_source']}, not {energy_source}: "
            "gpu-check reports NVML counter figures only"
        )
    if row["counter_energy_j"] is None:
        found.append(f"{row['run_id']}: no energy counter reading (energy_source {row['energy_source']})")
    pct = row["counter_vs_integral_pct"]
    if pct is None or abs(pct) > MAX_DISCREPANCY_PCT:
        found.append(
            f"{row['run_id']}: counter vs integral discrepancy {pct} % (limit {MAX_DISCREPANCY_PCT} %)"
        )
    coverage = row["sample_coverage"]
    if coverage is None or coverage < MIN_COVERAGE:
        found.append(f"{row['run_id']}: sample coverage {coverage} (minimum {MIN_COVERAGE})")
    return found


def _f(value: object, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        ("batch", "batch_size", 0),
        ("tok/s", "output_tokens_per_s", 1),
        ("window s", "window_s", 1),
        ("counter J", "counter_energy_j", 1),
        ("integral J", "integrated_energy_j", 1),
        ("diff %", "counter_vs_integral_pct", 2),
        ("idle W", "idle_power_w", 1),
        ("avg W", "avg_power_w", 1),
        ("adj J", "adjusted_energy_j", 1),
        ("J/tok", "energy_per_output_token_j", 4),
        ("adj J/tok", "adjusted_energy_per_output_token_j", 4),
        ("coverage", "sample_coverage", 3),
    ]
    print("  ".join(f"{title:>11}" for title, _, _ in columns))
    for row in rows:
        print("  ".join(f"{_f(row[key], digits):>11}" for _, key, digits in columns))
    for row in rows:
        throttled = "; ".join(row["throttling"]) or "none"
        print(f"{row['run_id']}: flags {row['flags'] or 'none'}; throttling: {throttled}")


def gpu_name(results: list[RunResult]) -> str | None:
    for result in results:
        if result.provenance and result.provenance.gpus:
            gpu = result.provenance.gpus[0]
            return f"{gpu.name} ({gpu.uuid}), driver {result.provenance.driver_version}"
    return None


# --------------------------------------------------------------------------- steps


class StepTimeout(Exception):
    """A step ran past its limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``StepTimeout`` in this (main) thread after ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise StepTimeout(f"step did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Summary:
    """``summary.json``, rewritten after every step so that it exists whatever happens."""

    def __init__(self, out: Path, mode: str, plan: Plan) -> None:
        self.path = out / "summary.json"
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "mode": mode,
            "plan": plan.__dict__,
            "gpu": None,
            "steps": {},
            "runs": [],
            "problems": [],
        }

    def step(self, name: str, limit_s: float, body: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        start = time.monotonic()
        entry: dict[str, Any] = {"status": "ok"}
        try:
            with time_limit(limit_s):
                entry.update(body())
        except StepTimeout as e:
            entry = {"status": "timeout", "error": str(e)}
        except Exception as e:
            entry = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        entry["elapsed_s"] = time.monotonic() - start
        self.data["steps"][name] = entry
        if entry["status"] != "ok":
            self.problem(f"step {name}: {entry['status']}: {entry.get('error')}")
        self.write()
        print(f"[{self.elapsed():.0f} s] {name}: {entry['status']}", flush=True)
        return entry if entry["status"] == "ok" else None

    def problem(self, text: str) -> None:
        self.data["problems"].append(text)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def write(self) -> None:
        self.data["elapsed_s"] = self.elapsed()
        from lem_harness.fileio import atomic_write_text

        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str) + "\n")


def probe_steps(summary: Summary, plan: Plan, env: dict[str, str]) -> None:
    """Steps 1-3 on the measured GPU (or the simulated device in smoke mode)."""
    from gpu_check_probes import Meter, burn, capability_table, counter_update_period_s, idle_with_context

    from lem_harness.devices import open_devices
    from lem_harness.experiment import MeasurementConfig

    devices, _ = open_devices(MeasurementConfig(device=plan.device), [0], env)  # type: ignore[arg-type]
    assert devices is not None
    meter = Meter(devices, plan.rate_hz)
    child_device = "cpu" if plan.device == "simulated" else "cuda"
    try:
        summary.step(
            "nvml", 60, lambda: {"capabilities": capability_table(devices),
                                 "counter_update_period_s": counter_update_period_s(devices)}
        )  # fmt: skip
        summary.step(
            "idle",
            4 * plan.probe_s + 60,
            lambda: {
                "no_context": meter.measure("idle", lambda: time.sleep(plan.probe_s)),
                "with_context": idle_with_context(meter, plan.probe_s, child_device, env),
            },
        )
        burned = summary.step(
            "burn", 2 * plan.probe_s + 90, lambda: burn(meter, plan.probe_s, child_device, env)
        )
        if burned is not None:
            pct = burned.get("counter_vs_integral_pct")
            if plan.device == "nvml" and (pct is None or abs(pct) > MAX_DISCREPANCY_PCT):
                summary.problem(f"burn: counter vs integral {pct} % (limit {MAX_DISCREPANCY_PCT} %)")
    finally:
        meter.close()
        devices.close()


def harness_steps(  # noqa: PLR0917
    summary: Summary, plan: Plan, out: Path, model_dir: Path, env: dict[str, str], timeout_s: float
) -> None:
    runs = [("pytorch", batch_size) for batch_size in plan.batch_sizes]
    if plan.device == "nvml" and importlib.util.find_spec("vllm") is not None:
        runs.append(("vllm", max(plan.batch_sizes)))  # the vLLM engine too, where it is installed
    results = []
    for backend, batch_size in runs:
        spec = make_spec(model_dir, batch_size, plan, out / "baseline-cache", backend)
        result = run_harness(spec, out / spec.run_id, timeout_s, env)
        timed_out = {"run_id": spec.run_id, "status": "timeout", "error": f"no result in {timeout_s:.0f} s"}
        row = figures(result) if result is not None else timed_out
        if result is not None:
            results.append(result)
        summary.data["runs"].append(row)
        for problem in problems(row, "simulated" if plan.device == "simulated" else "nvml_counter"):
            summary.problem(problem)
        summary.data["gpu"] = gpu_name(results)
        summary.write()
        print(f"[{summary.elapsed():.0f} s] {spec.run_id}: {row['status']}", flush=True)
    print_table([r for r in summary.data["runs"] if r["status"] != "timeout"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu-check")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny model + simulated device (script check)"
    )
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per harness run")
    parser.add_argument("--child", choices=["context", "burn"], help=argparse.SUPPRESS)
    parser.add_argument("--child-device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        from gpu_check_probes import child

        return child(args.child, args.seconds, args.child_device)
    plan = CPU_SMOKE_PLAN if args.cpu_smoke else GPU_PLAN
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ensure_harness_deps(out)
    env = dict(os.environ)
    if plan.device == "nvml":
        if env.pop("LEM_SIMULATED_DEVICE", None) is not None:
            print("gpu_check: LEM_SIMULATED_DEVICE is set: refused (this check reports NVML figures only)",
                  file=sys.stderr)  # fmt: skip
            return 1
        missing = no_gpu(env)
        if missing:
            print(f"gpu_check: {missing}; use --cpu-smoke to check the script itself", file=sys.stderr)
            return 2
    summary = Summary(out, "cpu-smoke" if args.cpu_smoke else "gpu", plan)
    summary.write()
    probe_steps(summary, plan, env)
    model: list[Path] = []
    summary.step("model", 300, lambda: {"path": str(_build(model, plan, out))})
    if model:
        harness_steps(summary, plan, out, model[0], env, args.timeout)
    summary.write()
    found = summary.data["problems"]
    print(f"\n{len(found)} problem(s); {summary.elapsed():.0f} s; summary: {summary.path}")
    for problem in found:
        print(f"  PROBLEM {problem}")
    return 1 if found else 0


def _build(model: list[Path], plan: Plan, out: Path) -> Path:
    model.append((build_smoke_model if plan.device == "simulated" else build_gpu_model)(out / "model"))
    return model[0]


def no_gpu(env: dict[str, str]) -> str | None:
    """Why NVML cannot measure GPU 0 here, or None."""
    from lem_harness.devices import DeviceError, open_devices
    from lem_harness.experiment import MeasurementConfig

    try:
        devices, _ = open_devices(MeasurementConfig(device="nvml"), [0], env)
    except DeviceError as e:
        return f"no NVIDIA GPU for NVML ({e})"
    assert devices is not None
    devices.close()
    return None


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ensure_harness_deps(_out_dir(None))
    raise SystemExit(main())

"""One run: spec → prompts → deep idle → load → warmup → ready idle → measured window → result.

The runner owns measurement; the engine only infers. Every phase is an energy window
of its own (``EnergyMeter``) and a span of the power timeline (``Sampler`` phase
labels), so that load, warmup and the baselines never leak into the measured window.

- The measured GPUs are the GPUs the engine uses: before any engine starts, the runner
  narrows ``CUDA_VISIBLE_DEVICES`` to them (by NVML index, PCI order), so a direct run with
  ``gpus: [1]`` never measures GPU 1 while the model sits on GPU 0.
- Warmup runs on prompts disjoint from the measured set (``warmup.disjoint_prompts``);
  afterwards the engine's prefix cache is reset where it has one.
- Deep idle (before load, no CUDA context) and ready idle (after warmup, model resident)
  are both recorded; adjusted energy uses the ready idle where it was measured.
- ``traffic_simulation``: the measured window's prompts arrive on a seeded schedule
  (``lem_harness.traffic``) and the engine serves them as they arrive (``Engine.serve``); the
  result gains a ``traffic`` block (rates, queueing delays, energy per request).
- ``measurement.phase_split``: after the measured window (and another cache reset) the
  same prompts run once more with one output token each: the prefill window.

Whatever happens — an exception, SIGTERM (``RunInterrupted``), Ctrl-C — devices and the
engine are closed and ``result.json`` is written (``status: failed`` with the error).
SIGTERM goes through an ``InterruptGate``: while the run executes it raises
``RunInterrupted``; once the run is closing (engine close, devices, timeline, result) it is
only recorded, so that closing and writing finish, and the result says the run was
interrupted (``error.type: RunInterrupted``) whichever phase the signal arrived in.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from lem_harness.contract import (
    OUTPUTS_FILE,
    RESULT_FILE,
    TIMELINE_COLUMNS,
    TIMELINE_FILE,
    BaselineMetrics,
    EnergyMetrics,
    ErrorInfo,
    Flag,
    InferenceMetrics,
    Phase,
    Provenance,
    RunResult,
    RunSpec,
    SetupMetrics,
    TrafficMetrics,
    WarmupMetrics,
)
from lem_harness.datasets import load_prompts
from lem_harness.devices import DeviceError, GpuDevices, open_devices
from lem_harness.devices.rapl import RaplReader
from lem_harness.devices.visible import cuda_initialised, pinned_cuda_env
from lem_harness.engines import create_engine
from lem_harness.engines.arrivals import served_plan
from lem_harness.engines.base import BatchResult, Engine, Generation, Tokenizer
from lem_harness.experiment import ExperimentConfig
from lem_harness.fileio import atomic_write_json, atomic_write_text
from lem_harness.flags import FlagInputs, validity_flags
from lem_harness.interrupts import InterruptGate, run_armed
from lem_harness.measure import (
    BaselineCache,
    BaselineReading,
    EnergyMeter,
    Sampler,
    WindowEnergy,
    measure_idle_baseline,
    with_counter_idle,
)
from lem_harness.measure.activity import ActivityProbe, ActivitySource, Snapshot, window_activity
from lem_harness.metrics import energy_metrics, inference_metrics
from lem_harness.outputs import in_prompt_order, output_records, write_outputs
from lem_harness.phase_split import PhaseSplit, phase_split
from lem_harness.provenance import build_provenance
from lem_harness.status import StatusFile
from lem_harness.traffic import arrival_offsets, traffic_metrics, traffic_seed
from lem_harness.warmup import disjoint_prompts, run_warmup

logger = logging.getLogger("lem_harness")

EngineFactory = Callable[[ExperimentConfig], Engine]
ActivityFactory = Callable[[GpuDevices | None], ActivitySource | None]


def default_activity(devices: GpuDevices | None) -> ActivitySource:
    """/proc for the host; NVML's compute processes for the GPUs, where the devices list them."""
    return ActivityProbe(gpu_processes=devices.compute_processes if devices is not None else None)


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


class _Run:
    """The state of one run as it progresses; whatever exists at the end goes into the result."""

    def __init__(  # noqa: PLR0917
        self,
        spec: RunSpec,
        clock: Callable[[], float],
        wall: Callable[[], float],
        sleep: Callable[[float], None],
        env: Mapping[str, str],
        activity: ActivityFactory,
        *,
        status: StatusFile,
        cpu_clock: Callable[[], float] | None = None,
    ) -> None:
        self.spec, self.cfg = spec, spec.config
        self.cpu_clock = cpu_clock
        self.status = status
        self.activity = activity
        self.activity_source: ActivitySource | None = None
        self.snapshots: dict[str, Snapshot | None] = {}
        self.clock, self.wall, self.sleep, self.env = clock, wall, sleep, env
        self.devices: GpuDevices | None = None
        self.sampler: Sampler | None = None
        self.meter = EnergyMeter(None, None, clock)
        self.engine: Engine | None = None
        self.warnings: list[str] = []
        self.phases: list[Phase] = []
        self.setup = SetupMetrics()
        self.baseline: BaselineMetrics | None = None
        self.temperature_now_c: dict[str, float] = {}
        self.warmup: WarmupMetrics | None = None
        self.window: WindowEnergy | None = None
        self.metrics: InferenceMetrics | None = None
        self.energy: EnergyMetrics | None = None
        self.flags: list[Flag] = []
        self.provenance: Provenance | None = None
        self.prefill_window: WindowEnergy | None = None
        self.phase_split: PhaseSplit | None = None
        self.traffic: TrafficMetrics | None = None
        self.arrivals_s: Sequence[float] = ()  # traffic_simulation: each request's arrival, s into the window
        self.request_starts_s: list[float] = []  # ... and the start of its processing
        self.tokenizer: Tokenizer | None = None
        self.generations: list[Generation] | None = None  # save_outputs: measured, in prompt order
        self.outputs_file: str | None = None

    # ---- steps

    def execute(self, engine_factory: EngineFactory) -> None:
        self._open_devices()
        engine = self.engine = engine_factory(self.cfg)
        prompts, warm_prompts = self._prompts(engine)
        if self.sampler is not None:
            self.sampler.start()
        self._baseline()
        self._load(engine)
        plan = engine.plan_batches(prompts)
        self._warmup(engine, warm_prompts)
        self._ready_idle()
        self._measure(engine, prompts, plan)
        if self.cfg.measurement.phase_split:
            self._prefill(engine, prompts, plan)
        self._flags()

    def output_records(self) -> list[dict[str, object]] | None:
        """``save_outputs``: one record per measured prompt (decoded now, after every window)."""
        if self.generations is None:
            return None
        decode = self.tokenizer.decode if self.cfg.decode_token_to_text and self.tokenizer else None
        return output_records(self.generations, decode)

    def _open_devices(self) -> None:
        self.devices, notes = open_devices(
            self.cfg.measurement, self.cfg.gpus, self.env, self.clock, cpu_clock=self.cpu_clock
        )
        self.warnings.extend(notes)
        if self.devices is not None and self.devices.kind == "nvml":
            self._pin_cuda_devices(self.devices)
        if self.devices is not None and self.cfg.timeseries.enabled:
            sampler = self.sampler = Sampler(
                self.devices, self.cfg.timeseries.sample_rate_hz, self.clock, self.wall
            )
            sampler.add_tick_callback(lambda: self.status.telemetry(sampler.latest()))
        self.meter = EnergyMeter(self.devices, self.sampler, self.clock, rapl=RaplReader())
        self.activity_source = self.activity(self.devices)

    def _pin_cuda_devices(self, devices: GpuDevices) -> None:
        """Make CUDA ordinals 0..n-1 the measured GPUs, for the engine and every worker it starts."""
        changes = pinned_cuda_env([gpu.index for gpu in devices.info()], self.env)
        if not changes:
            return
        if not isinstance(self.env, MutableMapping) or cuda_initialised():
            raise DeviceError(
                "the engine would not run on the measured GPUs: set "
                f"{' '.join(f'{k}={v}' for k, v in changes.items())} "
                "before starting the harness (CUDA was initialised before the harness could narrow it)"
            )
        self.env.update(changes)
        logger.info("CUDA narrowed to the measured GPUs: %s", changes)

    def _prompts(self, engine: Engine) -> tuple[list[list[int]], list[list[int]]]:
        """The measured prompts and the warmup prompts (disjoint from them, same lengths)."""
        tokenizer = self.tokenizer = engine.load_tokenizer()
        prompt_set = load_prompts(self.cfg, tokenizer, self.env)
        self.warnings.extend(prompt_set.warnings)
        logger.info("prompts: %d from %s", len(prompt_set.prompts), prompt_set.source)
        count = self.cfg.warmup.max_prompts if self.cfg.warmup.enabled else 0
        warm = disjoint_prompts(
            prompt_set.prompts, count, tokenizer.vocab_size, tokenizer.special_ids, self.cfg.random_seed
        )
        return prompt_set.prompts, warm

    def _begin(self, phase: str) -> None:
        self.snapshots[phase] = self._snapshot()  # before the phase label and the edge
        if self.sampler is not None:
            self.sampler.set_phase(phase)
        self.meter.begin(phase)

    def _end(self, phase: str, *, record: bool = True) -> WindowEnergy:
        window = self.meter.end(phase)
        if self.sampler is not None:
            self.sampler.set_phase("idle")
        start, end = self.snapshots.pop(phase, None), self._snapshot()
        if start is not None and end is not None:
            window.activity = window_activity(start, end)
        if record and phase in ("baseline", "load", "build", "warmup", "ready_idle", "measure", "prefill"):
            self.phases.append(Phase(name=phase, start_s=window.start_s, end_s=window.end_s))
        return window

    def _baseline(self) -> None:
        conf = self.cfg.baseline
        if not conf.enabled or self.devices is None:
            return
        uuids = self.devices.uuids()
        image_id = self.spec.image.id if self.spec.image is not None else None
        cache = BaselineCache(Path(self.spec.baseline_cache_dir)) if self.spec.baseline_cache_dir else None
        if conf.method == "cache" and cache is None:
            self.warnings.append(
                "baseline.method is cache but the run has no baseline cache dir: measured fresh"
            )
        if conf.method == "cache" and cache is not None:
            hit = cache.get(uuids, image_id, conf.cache_ttl_seconds, now=self.wall())
            self.warnings.extend(cache.warnings)
            if hit is not None:
                reading, age = hit
                self.baseline = BaselineMetrics(**reading.model_dump(), from_cache=True, age_s=age)
                self.temperature_now_c = {
                    s.gpu_uuid: s.temperature_c for s in self.devices.sample() if s.temperature_c is not None
                }
                logger.info("baseline: %.1f W from the cache (%.0f s old)", reading.idle_power_w, age)
                return
        self.status.phase("baseline")
        fresh = self._idle("baseline", conf.duration_seconds)
        if fresh is None:
            return
        if cache is not None:
            cache.put(uuids, image_id, fresh, now=self.wall())
        self.baseline = BaselineMetrics(**fresh.model_dump())
        logger.info("baseline: %.1f W idle over %.0f s", fresh.idle_power_w, fresh.duration_s)

    def _snapshot(self) -> Snapshot | None:
        if self.activity_source is None:
            return None
        try:
            return self.activity_source.snapshot()
        except (OSError, ValueError, DeviceError) as e:
            logger.debug("activity snapshot failed: %s", e)
            return None

    def _idle(self, phase: str, seconds: float) -> BaselineReading | None:
        """Idle power over ``seconds`` as the window ``phase``; the counter's where it moved."""
        assert self.devices is not None
        self._begin(phase)
        try:
            reading = measure_idle_baseline(self.devices, seconds, self.sampler, self.clock, self.sleep)
        except DeviceError as e:
            self._end(phase)
            what = "idle baseline" if phase == "baseline" else f"{phase} idle power"
            self.warnings.append(f"{what} not measured ({e}): adjusted energy uses what else was measured")
            return None
        window = self._end(phase)
        return with_counter_idle(reading, window.counter_energy_j, window.duration_s)

    def _ready_idle(self) -> None:
        """Idle power with the model loaded and warm (CUDA context up): the idle adjusted energy uses."""
        seconds = self.cfg.baseline.ready_duration_seconds
        if self.baseline is None or self.devices is None or seconds <= 0:
            return
        self.engine_synchronize()
        reading = self._idle("ready_idle", seconds)
        if reading is None:
            return
        self.baseline = self.baseline.model_copy(
            update={
                "ready_idle_power_w": reading.idle_power_w,
                "ready_idle_power_source": reading.idle_power_source,
                "ready_idle_duration_s": reading.duration_s,
            }
        )
        logger.info("ready idle: %.1f W over %.0f s", reading.idle_power_w, reading.duration_s)

    def engine_synchronize(self) -> None:
        if self.engine is not None:
            self.engine.synchronize()

    def _load(self, engine: Engine) -> None:
        self.status.phase("loading")
        self._begin("build")
        info = engine.build()
        build = self._end("build", record=info.built)
        self.warnings.extend(info.notes)
        self._begin("load")
        engine.load()
        engine.synchronize()
        load = self._end("load")
        self.warnings.extend(engine.notes())
        self.setup = SetupMetrics(
            load_duration_s=load.duration_s,
            load_energy_j=load.gross_energy_j,
            build_duration_s=build.duration_s if info.built else None,
            build_energy_j=build.gross_energy_j if info.built else None,
            engine_cache_hit=info.engine_cache_hit,
        )
        logger.info("load: %.2f s", load.duration_s)

    def _warmup(self, engine: Engine, prompts: Sequence[Sequence[int]]) -> None:
        conf = self.cfg.warmup
        if not conf.enabled or conf.max_prompts == 0:
            self.warmup = WarmupMetrics(mode="disabled", iterations=0, prompts=0, duration_s=0.0)
            return
        self._begin("warmup")
        self.status.phase("warmup", warmup_batches=0)

        def progress(batches: int, cv: float | None) -> None:
            self.status.update(warmup_batches=batches, warmup_cv=cv)

        metrics = run_warmup(
            engine, prompts, engine.plan_batches(prompts), conf, self.clock, on_batch=progress
        )
        engine.synchronize()
        self._end("warmup")
        self.warmup = metrics.model_copy(
            update={
                "prompts_disjoint": True,
                "prefix_cache_reset": engine.reset_prefix_cache(),
            }
        )
        w = self.warmup
        logger.info("warmup: %d steps, %d prompts, final CV %s", w.iterations, w.prompts, w.final_cv)

    def _measure(
        self, engine: Engine, prompts: Sequence[Sequence[int]], plan: Sequence[Sequence[int]]
    ) -> None:
        engine.reset_peak_memory()
        engine.synchronize()
        self._begin("measure")
        self.status.phase("measuring", batches_done=0, batches_total=len(plan), output_tokens=0)
        if self.cfg.traffic_simulation.enabled:
            batches = self._serve(engine, prompts)
        else:
            batches = self._run_plan(engine, prompts, plan)
        engine.synchronize()
        window = self.window = self._end("measure")
        if self.cfg.save_outputs:
            # served traffic runs its batches first come, first served: consecutive prompts
            order = served_plan(batches) if self.cfg.traffic_simulation.enabled else plan
            self.generations = in_prompt_order(order, batches)
        self.warnings.extend(window.warnings)
        self.metrics = inference_metrics(batches, window.duration_s, engine.peak_memory_bytes())
        kind = self.devices.kind if self.devices is not None else None
        failures = sum(self.devices.power_read_failures().values()) if self.devices is not None else 0
        self.energy = energy_metrics(window, kind, self._idle_power(), self.metrics.output_tokens).model_copy(
            update={"power_read_failures": failures}
        )
        m, e = self.metrics, self.energy
        logger.info(
            "measure: %d output tokens in %.2f s (%.1f tok/s); gross energy %s J",
            m.output_tokens,
            m.duration_s,
            m.output_tokens_per_s,
            e.gross_energy_j,
        )
        if self.cfg.traffic_simulation.enabled:
            self.traffic = traffic_metrics(
                self.cfg, self.arrivals_s, self.request_starts_s, window.duration_s, e
            )

    def _run_plan(
        self, engine: Engine, prompts: Sequence[Sequence[int]], plan: Sequence[Sequence[int]]
    ) -> list[BatchResult]:
        """Every prompt at once, batch after batch of the engine's plan."""
        batches: list[BatchResult] = []
        tokens = 0
        for batch in plan:
            batches.append(engine.generate([prompts[i] for i in batch]))
            tokens += sum(g.output_tokens for g in batches[-1].generations)
            self.status.update(batches_done=len(batches), output_tokens=tokens)
        return batches

    def _serve(self, engine: Engine, prompts: Sequence[Sequence[int]]) -> list[BatchResult]:
        """``traffic_simulation``: the prompts arrive on the seeded schedule and the engine serves them."""
        offsets = arrival_offsets(len(prompts), self.cfg.traffic_simulation, traffic_seed(self.cfg))
        served = engine.serve(prompts, offsets, self.clock, self.sleep)
        self.arrivals_s, self.request_starts_s = offsets, served.starts_s
        tokens = sum(g.output_tokens for b in served.batches for g in b.generations)
        self.status.update(batches_done=len(served.batches), output_tokens=tokens)
        return served.batches

    def _idle_power(self) -> tuple[float, str] | None:
        """(watts, "ready" | "deep"): ready idle where measured, else deep idle, else None."""
        base = self.baseline
        if base is None:
            return None
        if base.ready_idle_power_w is not None:
            return base.ready_idle_power_w, "ready"
        return None if base.idle_power_w is None else (base.idle_power_w, "deep")

    def _prefill(
        self, engine: Engine, prompts: Sequence[Sequence[int]], plan: Sequence[Sequence[int]]
    ) -> None:
        """The same prompts with one output token each (prefill only), after a cache reset."""
        engine.reset_prefix_cache()
        engine.synchronize()
        self._begin("prefill")
        batches = [engine.generate_prefill([prompts[i] for i in batch]) for batch in plan]
        engine.synchronize()
        window = self.prefill_window = self._end("prefill")
        self.warnings.extend(f"prefill window: {w}" for w in window.warnings)
        assert self.metrics is not None and self.energy is not None
        prefill = inference_metrics(batches, window.duration_s)
        kind = self.devices.kind if self.devices is not None else None
        self.phase_split = phase_split(self.energy, self.metrics, window, prefill, kind, self._idle_power())

    def _flags(self) -> None:
        assert self.energy is not None and self.window is not None
        self.flags = validity_flags(self._flag_inputs(self.energy, self.window))
        if self.phase_split is not None and self.prefill_window is not None:
            prefill_flags = validity_flags(
                self._flag_inputs(self.phase_split.prefill_energy, self.prefill_window)
            )
            self.phase_split = replace(
                self.phase_split,
                metrics=self.phase_split.metrics.model_copy(update={"prefill_flags": prefill_flags}),
            )

    def _flag_inputs(self, energy: EnergyMetrics, window: WindowEnergy) -> FlagInputs:
        return FlagInputs(
            device_kind=self.devices.kind if self.devices is not None else None,
            energy=energy,
            throttle_reasons_seen=window.throttle_reasons_seen,
            baseline=self.baseline,
            current_temperature_c=self.temperature_now_c,
            warmup=self.warmup,
            activity=window.activity,
        )

    # ---- the end, success or not

    def close(self) -> None:
        """Provenance first (it reads the devices), then engine, sampler and devices, each guarded."""
        try:
            versions = self.engine.versions() if self.engine is not None else {}
            engine_args = self.engine.effective_args() if self.engine is not None else {}
            self.provenance = build_provenance(self.spec, self.devices, versions, self.env, engine_args)
        except Exception as e:  # provenance must not mask the run's own outcome
            self.warnings.append(f"provenance incomplete: {type(e).__name__}: {e}")
        for name, action in (
            ("engine", self._close_engine),
            ("sampler", self._stop_sampler),
            ("devices", self._close_devices),
        ):
            try:
                action()
            except Exception as e:
                self.warnings.append(f"closing the {name} failed: {type(e).__name__}: {e}")

    def _close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            if self.sampler.failed_ticks:
                self.warnings.append(
                    f"{self.sampler.failed_ticks} power samples failed; first: {self.sampler.errors[0]}"
                )

    def _close_devices(self) -> None:
        if self.devices is not None:
            self.devices.close()

    def write_timeline(self, path: Path) -> None:
        if self.sampler is not None:
            self.sampler.write_csv(path)
        else:
            atomic_write_text(path, ",".join(TIMELINE_COLUMNS) + "\n")

    def result(self, error: ErrorInfo | None, started_at: str) -> RunResult:
        spec = self.spec
        return RunResult(
            run_id=spec.run_id,
            campaign_id=spec.campaign_id,
            config_id=spec.config_id,
            config_name=spec.config_name,
            cycle=spec.cycle,
            backend=self.cfg.backend,
            status="failed" if error is not None else "ok",
            error=error,
            started_at=started_at,
            finished_at=_iso(self.wall()),
            config=self.cfg,
            metrics=self.metrics,
            energy=self.energy,
            setup=self.setup,
            warmup=self.warmup,
            baseline=self.baseline,
            phases=self.phases,
            phase_split=self.phase_split.metrics if self.phase_split is not None else None,
            traffic=self.traffic,
            flags=self.flags,
            warnings=self.warnings,
            timeline_file=TIMELINE_FILE,
            outputs_file=self.outputs_file,
            provenance=self.provenance,
        )


def _write_outputs(state: _Run, path: Path) -> None:
    """``outputs.jsonl`` when ``save_outputs`` is on and the measured window finished."""
    try:
        records = state.output_records()
        if records is None:
            return
        write_outputs(path, records)
        state.outputs_file = OUTPUTS_FILE
    except (OSError, NotImplementedError, ValueError) as e:
        state.warnings.append(f"outputs not written ({OUTPUTS_FILE}): {type(e).__name__}: {e}")


def run(
    spec: RunSpec,
    out_dir: Path,
    *,
    clock: Callable[[], float] = time.monotonic,
    engine_factory: EngineFactory = create_engine,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    env: Mapping[str, str] = os.environ,
    gate: InterruptGate | None = None,
    activity: ActivityFactory = default_activity,
    cpu_clock: Callable[[], float] | None = None,
) -> RunResult:
    """Run ``spec``; write ``result.json`` and ``timeline.csv`` under ``out_dir``; return the result.

    ``cpu_clock`` (the process's CPU time) makes a simulated device follow the CPU load.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started_at = _iso(wall())
    status = StatusFile(out_dir, wall)
    state = _Run(spec, clock, wall, sleep, env, activity, status=status, cpu_clock=cpu_clock)
    gate = gate or InterruptGate()
    try:
        error = run_armed(lambda: state.execute(engine_factory), gate)
    finally:
        state.close()
    error = error or gate.error()
    status.phase("writing")
    try:
        state.write_timeline(out_dir / TIMELINE_FILE)
    except OSError as e:
        state.warnings.append(f"timeline not written: {e}")
    _write_outputs(state, out_dir / OUTPUTS_FILE)
    result = state.result(error, started_at)
    atomic_write_json(out_dir / RESULT_FILE, result)
    return result

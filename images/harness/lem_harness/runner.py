"""One run: spec → prompts → idle baseline → load → warmup → measured window → result.

The runner owns measurement; the engine only infers. Every phase is an energy window
of its own (``EnergyMeter``) and a span of the power timeline (``Sampler`` phase
labels), so that load, warmup and the baseline never leak into the measured window.
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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from lem_harness.contract import (
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
    WarmupMetrics,
)
from lem_harness.datasets import DatasetError, load_prompts
from lem_harness.devices import DeviceError, GpuDevices, open_devices
from lem_harness.devices.rapl import RaplReader
from lem_harness.engines import create_engine
from lem_harness.engines.base import BatchResult, Engine, EngineUnavailableError
from lem_harness.experiment import ExperimentConfig
from lem_harness.fileio import atomic_write_json, atomic_write_text
from lem_harness.flags import FlagInputs, validity_flags
from lem_harness.measure import BaselineCache, EnergyMeter, Sampler, WindowEnergy, measure_idle_baseline
from lem_harness.metrics import energy_metrics, inference_metrics
from lem_harness.provenance import build_provenance
from lem_harness.status import StatusFile
from lem_harness.warmup import run_warmup

logger = logging.getLogger("lem_harness")

EngineFactory = Callable[[ExperimentConfig], Engine]
# Failures a person can act on from the message alone: logged without a traceback.
EXPECTED_ERRORS = (DatasetError, EngineUnavailableError, DeviceError, FileNotFoundError)


class RunInterrupted(BaseException):
    """SIGTERM arrived: unwind (closing windows and devices) and write a failed result."""


class InterruptGate:
    """Where a SIGTERM lands: raised as ``RunInterrupted`` while armed, recorded otherwise."""

    def __init__(self) -> None:
        self.armed = False
        self.received: str | None = None

    def signal(self, name: str) -> None:
        """Called by the signal handler."""
        if self.received is None:
            self.received = name
        if self.armed:
            self.armed = False
            raise RunInterrupted(f"received {name}: the run was stopped")

    def error(self) -> ErrorInfo | None:
        """The error to report for a signal that arrived while the run was closing."""
        if self.received is None:
            return None
        return ErrorInfo(type="RunInterrupted", message=f"received {self.received}: the run was stopped")


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


class _Run:
    """The state of one run as it progresses; whatever exists at the end goes into the result."""

    def __init__(
        self,
        spec: RunSpec,
        clock: Callable[[], float],
        wall: Callable[[], float],
        sleep: Callable[[float], None],
        env: Mapping[str, str],
        *,
        status: StatusFile,
    ) -> None:
        self.spec, self.cfg = spec, spec.config
        self.status = status
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

    # ---- steps

    def execute(self, engine_factory: EngineFactory) -> None:
        self._open_devices()
        engine = self.engine = engine_factory(self.cfg)
        prompts = self._prompts(engine)
        if self.sampler is not None:
            self.sampler.start()
        self._baseline()
        self._load(engine)
        plan = engine.plan_batches(prompts)
        self._warmup(engine, prompts, plan)
        self._measure(engine, prompts, plan)
        self._flags()

    def _open_devices(self) -> None:
        self.devices, notes = open_devices(self.cfg.measurement, self.cfg.gpus, self.env, self.clock)
        self.warnings.extend(notes)
        if self.devices is not None and self.cfg.timeseries.enabled:
            sampler = self.sampler = Sampler(
                self.devices, self.cfg.timeseries.sample_rate_hz, self.clock, self.wall
            )
            sampler.add_tick_callback(lambda: self.status.telemetry(sampler.latest()))
        self.meter = EnergyMeter(self.devices, self.sampler, self.clock, rapl=RaplReader())

    def _prompts(self, engine: Engine) -> list[list[int]]:
        prompt_set = load_prompts(self.cfg, engine.load_tokenizer(), self.env)
        self.warnings.extend(prompt_set.warnings)
        logger.info("prompts: %d from %s", len(prompt_set.prompts), prompt_set.source)
        return prompt_set.prompts

    def _begin(self, phase: str) -> None:
        if self.sampler is not None:
            self.sampler.set_phase(phase)
        self.meter.begin(phase)

    def _end(self, phase: str, *, record: bool = True) -> WindowEnergy:
        window = self.meter.end(phase)
        if self.sampler is not None:
            self.sampler.set_phase("idle")
        if record and phase in ("baseline", "load", "build", "warmup", "measure"):
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
        self._begin("baseline")
        self.status.phase("baseline")
        try:
            reading = measure_idle_baseline(
                self.devices, conf.duration_seconds, self.sampler, self.clock, self.sleep
            )
        except DeviceError as e:
            self._end("baseline")
            self.warnings.append(f"idle baseline not measured ({e}): adjusted energy is null")
            return
        self._end("baseline")
        if cache is not None:
            cache.put(uuids, image_id, reading, now=self.wall())
        self.baseline = BaselineMetrics(**reading.model_dump())
        logger.info("baseline: %.1f W idle over %.0f s", reading.idle_power_w, reading.duration_s)

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

    def _warmup(
        self, engine: Engine, prompts: Sequence[Sequence[int]], plan: Sequence[Sequence[int]]
    ) -> None:
        conf = self.cfg.warmup
        if not conf.enabled or conf.max_prompts == 0:
            self.warmup = WarmupMetrics(mode="disabled", iterations=0, prompts=0, duration_s=0.0)
            return
        self._begin("warmup")
        self.status.phase("warmup", warmup_batches=0)

        def progress(batches: int, cv: float | None) -> None:
            self.status.update(warmup_batches=batches, warmup_cv=cv)

        self.warmup = run_warmup(engine, prompts, plan, conf, self.clock, on_batch=progress)
        engine.synchronize()
        self._end("warmup")
        w = self.warmup
        logger.info("warmup: %d batches, %d prompts, final CV %s", w.iterations, w.prompts, w.final_cv)

    def _measure(
        self, engine: Engine, prompts: Sequence[Sequence[int]], plan: Sequence[Sequence[int]]
    ) -> None:
        engine.reset_peak_memory()
        engine.synchronize()
        self._begin("measure")
        self.status.phase("measuring", batches_done=0, batches_total=len(plan), output_tokens=0)
        batches: list[BatchResult] = []
        tokens = 0
        for batch in plan:
            batches.append(engine.generate([prompts[i] for i in batch]))
            tokens += sum(g.output_tokens for g in batches[-1].generations)
            self.status.update(batches_done=len(batches), output_tokens=tokens)
        engine.synchronize()
        window = self.window = self._end("measure")
        self.warnings.extend(window.warnings)
        self.metrics = inference_metrics(batches, window.duration_s, engine.peak_memory_bytes())
        idle = self.baseline.idle_power_w if self.baseline is not None else None
        kind = self.devices.kind if self.devices is not None else None
        self.energy = energy_metrics(window, kind, idle, self.metrics.output_tokens)
        m, e = self.metrics, self.energy
        logger.info(
            "measure: %d output tokens in %.2f s (%.1f tok/s); gross energy %s J",
            m.output_tokens,
            m.duration_s,
            m.output_tokens_per_s,
            e.gross_energy_j,
        )

    def _flags(self) -> None:
        assert self.energy is not None and self.window is not None
        self.flags = validity_flags(
            FlagInputs(
                device_kind=self.devices.kind if self.devices is not None else None,
                energy=self.energy,
                throttle_reasons_seen=self.window.throttle_reasons_seen,
                baseline=self.baseline,
                baseline_ttl_s=self.cfg.baseline.cache_ttl_seconds,
                current_temperature_c=self.temperature_now_c,
                warmup=self.warmup,
            )
        )

    # ---- the end, success or not

    def close(self) -> None:
        """Provenance first (it reads the devices), then engine, sampler and devices, each guarded."""
        try:
            versions = self.engine.versions() if self.engine is not None else {}
            self.provenance = build_provenance(self.spec, self.devices, versions, self.env)
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
            flags=self.flags,
            warnings=self.warnings,
            timeline_file=TIMELINE_FILE,
            provenance=self.provenance,
        )


def _error_info(error: BaseException) -> ErrorInfo:
    if isinstance(error, (*EXPECTED_ERRORS, RunInterrupted, KeyboardInterrupt)):
        logger.error("run failed: %s: %s", type(error).__name__, error)
    else:
        logger.exception("run failed")
    message = str(error) or repr(error)
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted (SIGINT)"
    return ErrorInfo(type=type(error).__name__, message=message)


def _execute(state: _Run, engine_factory: EngineFactory, gate: InterruptGate) -> ErrorInfo | None:
    """The run's steps with SIGTERM armed; the error they ended with, if any."""
    try:
        try:
            gate.armed = True
            state.execute(engine_factory)
        finally:
            gate.armed = False
    except (Exception, KeyboardInterrupt, RunInterrupted) as e:
        return _error_info(e)
    return None


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
) -> RunResult:
    """Run ``spec``; write ``result.json`` and ``timeline.csv`` under ``out_dir``; return the result."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started_at = _iso(wall())
    status = StatusFile(out_dir, wall)
    state = _Run(spec, clock, wall, sleep, env, status=status)
    gate = gate or InterruptGate()
    try:
        error = _execute(state, engine_factory, gate)
    finally:
        state.close()
    error = error or gate.error()
    status.phase("writing")
    try:
        state.write_timeline(out_dir / TIMELINE_FILE)
    except OSError as e:
        state.warnings.append(f"timeline not written: {e}")
    result = state.result(error, started_at)
    atomic_write_json(out_dir / RESULT_FILE, result)
    return result

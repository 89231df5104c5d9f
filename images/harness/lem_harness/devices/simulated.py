"""A simulated GPU set with a known power curve, for tests and demos only.

Chosen only explicitly (``measurement.device: simulated`` or ``LEM_SIMULATED_DEVICE=1``);
every result it touches says ``energy_source: simulated``.

GPU ``i``'s power at clock time ``t`` (``τ = t - origin_s``, ``ω = 2π / period_s``)::

    P_i(t) = idle_power_w + i·gpu_step_w + amplitude_w·(1 - cos ωτ)/2 + ramp_w_per_s·τ

and its energy counter is the exact integral of that curve since ``origin_s`` (plus
``counter_offset_j``)::

    E_i(t) = counter_offset_j + (idle_power_w + i·gpu_step_w + amplitude_w/2)·τ
             - amplitude_w/(2ω)·sin ωτ + ramp_w_per_s·τ²/2

so a test can assert that a window's gross energy equals ``energy_between(t0, t1)``.
With ``amplitude_w=0`` the curve is linear and the trapezoid rule is exact on it.
Temperature, SM clock, memory and utilisation follow from the power deterministically.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lem_harness.contract import GpuInfo
from lem_harness.devices.base import DeviceNotSupportedError, DeviceSample, GpuDevices

SW_THERMAL_SLOWDOWN = 0x20  # NVML clocks-event reason bit reported once ``throttle_after_s`` has passed
SIMULATED_SM_CLOCK_MHZ = 1410.0
SIMULATED_MEMORY_USED_BYTES = 2**30


@dataclass(frozen=True)
class PowerCurve:
    """The deterministic curve's parameters (see the module docstring)."""

    idle_power_w: float = 60.0
    amplitude_w: float = 40.0
    period_s: float = 10.0
    ramp_w_per_s: float = 0.0
    gpu_step_w: float = 10.0

    def power_w(self, gpu: int, tau_s: float) -> float:
        omega = 2.0 * math.pi / self.period_s
        wave = self.amplitude_w * (1.0 - math.cos(omega * tau_s)) / 2.0
        return self._base_w(gpu) + wave + self.ramp_w_per_s * tau_s

    def energy_j(self, gpu: int, tau_s: float) -> float:
        """∫₀^τ P_i — the antiderivative, zero at τ = 0."""
        omega = 2.0 * math.pi / self.period_s
        level = (self._base_w(gpu) + self.amplitude_w / 2.0) * tau_s
        wave = self.amplitude_w / (2.0 * omega) * math.sin(omega * tau_s)
        return level - wave + self.ramp_w_per_s * tau_s * tau_s / 2.0

    def _base_w(self, gpu: int) -> float:
        return self.idle_power_w + gpu * self.gpu_step_w


@dataclass(frozen=True)
class ThermalModel:
    """First-order die temperature: dT/dt = (ambient_c + c_per_w·P − T) / tau_s.

    Held at power P, the temperature relaxes exponentially towards ``ambient_c + c_per_w·P``
    with time constant ``tau_s`` (defaults: H100-like, 34 °C idle at 90 W, 70 °C at 450 W).
    For benchmarks of thermal gaps; the simulated GPUs' own ``temperature_c`` stays the
    instantaneous ``25 + 0.25·P`` the tests rely on.
    """

    ambient_c: float = 25.0
    c_per_w: float = 0.1
    tau_s: float = 30.0

    def steady_c(self, power_w: float) -> float:
        return self.ambient_c + self.c_per_w * power_w

    def after(self, temperature_c: float, power_w: float, seconds: float) -> float:
        """The temperature after ``seconds`` at ``power_w`` (the exact solution)."""
        target = self.steady_c(power_w)
        return target + (temperature_c - target) * math.exp(-seconds / self.tau_s)


class SimulatedDevices(GpuDevices):
    """``n_gpus`` simulated GPUs whose power is ``PowerCurve`` of the injected clock."""

    kind = "simulated"

    def __init__(
        self,
        n_gpus: int = 1,
        clock: Callable[[], float] = time.monotonic,
        *,
        idle_power_w: float = 60.0,
        amplitude_w: float = 40.0,
        period_s: float = 10.0,
        ramp_w_per_s: float = 0.0,
        gpu_step_w: float = 10.0,
        origin_s: float | None = None,
        counter_offset_j: float = 0.0,
        has_counter: bool = True,
        throttle_after_s: float | None = None,
    ) -> None:
        if n_gpus < 1:
            raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.curve = PowerCurve(idle_power_w, amplitude_w, period_s, ramp_w_per_s, gpu_step_w)
        self.n_gpus = n_gpus
        self._clock = clock
        self.origin_s = clock() if origin_s is None else origin_s
        self.counter_offset_j = counter_offset_j
        self._has_counter = has_counter
        self._throttle_after_s = throttle_after_s
        self.closed = False

    # ---- the curve, for tests

    def power_at(self, t: float, gpu: int = 0) -> float:
        """GPU ``gpu``'s power (W) at clock time ``t``."""
        return self.curve.power_w(gpu, t - self.origin_s)

    def energy_between(self, t0: float, t1: float, gpu: int | None = 0) -> float:
        """Exact ∫ P dt (J) over [t0, t1] for one GPU, or summed over all GPUs when ``gpu`` is None."""
        gpus = range(self.n_gpus) if gpu is None else [gpu]
        return sum(
            self.curve.energy_j(i, t1 - self.origin_s) - self.curve.energy_j(i, t0 - self.origin_s)
            for i in gpus
        )

    # ---- GpuDevices

    def info(self) -> list[GpuInfo]:
        return [
            GpuInfo(
                index=i,
                uuid=self._uuid(i),
                name="Simulated GPU",
                driver_version="simulated",
                cuda_driver_version=None,
                power_limit_w=300.0,
                sm_clock_mhz=SIMULATED_SM_CLOCK_MHZ,
                max_sm_clock_mhz=1980.0,
                memory_clock_mhz=1593.0,
                memory_total_bytes=80 * 2**30,
                persistence_mode=True,
                compute_capability=None,
                supports_energy_counter=self._has_counter,
            )
            for i in range(self.n_gpus)
        ]

    def supports_energy_counter(self) -> bool:
        return self._has_counter

    def energy_counter_j(self) -> dict[str, float]:
        if not self._has_counter:
            raise DeviceNotSupportedError("this simulated GPU set was built without an energy counter")
        tau = self._clock() - self.origin_s
        return {
            self._uuid(i): self.counter_offset_j + self.curve.energy_j(i, tau) for i in range(self.n_gpus)
        }

    def sample(self) -> list[DeviceSample]:
        tau = self._clock() - self.origin_s
        return [self._sample_one(i, tau) for i in range(self.n_gpus)]

    def _sample_one(self, gpu: int, tau: float) -> DeviceSample:
        return self._sample_at(gpu, tau, self.curve.power_w(gpu, tau))

    def _sample_at(self, gpu: int, tau: float, power: float) -> DeviceSample:
        above_idle = power - self.curve.idle_power_w - gpu * self.curve.gpu_step_w
        utilization = 0.0 if self.curve.amplitude_w <= 0 else 100.0 * above_idle / self.curve.amplitude_w
        throttled = self._throttle_after_s is not None and tau >= self._throttle_after_s
        return DeviceSample(
            gpu_index=gpu,
            gpu_uuid=self._uuid(gpu),
            power_w=power,
            temperature_c=25.0 + 0.25 * power,
            sm_clock_mhz=SIMULATED_SM_CLOCK_MHZ,
            memory_used_bytes=SIMULATED_MEMORY_USED_BYTES,
            utilization_pct=min(100.0, max(0.0, utilization)),
            throttle_reasons=SW_THERMAL_SLOWDOWN if throttled else 0,
        )

    def power_sources(self) -> dict[str, str]:
        return {self._uuid(i): "simulated" for i in range(self.n_gpus)}

    def driver_version(self) -> str | None:
        return "simulated"

    def cuda_version(self) -> str | None:
        return None

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def _uuid(gpu: int) -> str:
        return f"GPU-SIMULATED-{gpu}"


class LoadFollowingDevices(SimulatedDevices):
    """Simulated GPUs whose power follows this process's CPU load: the device of the CPU demo.

    GPU ``i`` draws ``P_i(t) = idle_power_w + i·gpu_step_w + amplitude_w·L(t)``, where the
    activity ``L`` follows the process's CPU load with the time constant ``response_s`` (a
    first-order response, as a card's power follows its load): over the interval between two
    readings (a sample or a counter read) of length ``Δt``, the load is
    ``u = Δcpu / (Δt · cpus)`` clamped to [0, 1] (``cpu_clock``, by default
    ``time.process_time``: every thread of the harness, engine included; ``cpus``: the CPUs it may
    run on), and ``L`` moves from ``L₀`` towards ``u``::

        L(t₀ + s) = u + (L₀ − u)·e^(−s/τ),   ∫ L = u·Δt + (L₀ − u)·τ·(1 − e^(−Δt/τ))

    The energy counter is the exact integral of ``P``. The power is continuous, so a timeline's
    trapezoid agrees with the counter even over short windows. An idle baseline reads
    ``idle_power_w``, inference reads more, and the demo's idle-adjusted energy is that of the CPU
    work the run did, in simulated watts (unlike the periodic curve, whose phase at the baseline
    could exceed the window's average).
    """

    def __init__(
        self,
        n_gpus: int = 1,
        clock: Callable[[], float] = time.monotonic,
        *,
        cpu_clock: Callable[[], float] = time.process_time,
        cpus: int = 1,
        idle_power_w: float = 60.0,
        amplitude_w: float = 240.0,
        gpu_step_w: float = 10.0,
        response_s: float = 0.2,
    ) -> None:
        if cpus < 1:
            raise ValueError(f"cpus must be >= 1, got {cpus}")
        if response_s <= 0:
            raise ValueError(f"response_s must be > 0, got {response_s}")
        super().__init__(
            n_gpus, clock, idle_power_w=idle_power_w, amplitude_w=amplitude_w, gpu_step_w=gpu_step_w
        )
        self._cpu_clock, self._cpus, self._response_s = cpu_clock, cpus, response_s
        self._lock = threading.Lock()
        self._last_t, self._last_cpu = self.origin_s, cpu_clock()
        self._activity = 0.0  # L at the last reading
        self._energy_j = [0.0] * n_gpus

    def power_now(self, gpu: int = 0) -> float:
        """GPU ``gpu``'s power (W) at the last reading."""
        return self.curve.idle_power_w + gpu * self.curve.gpu_step_w + self.curve.amplitude_w * self._activity

    def energy_counter_j(self) -> dict[str, float]:
        with self._lock:
            self._advance()
            return {self._uuid(i): self._energy_j[i] for i in range(self.n_gpus)}

    def sample(self) -> list[DeviceSample]:
        with self._lock:
            tau = self._advance()
            return [self._sample_at(i, tau, self.power_now(i)) for i in range(self.n_gpus)]

    def _advance(self) -> float:
        """A reading now: integrate the interval since the previous one; returns τ."""
        now, cpu = self._clock(), self._cpu_clock()
        dt = now - self._last_t
        if dt > 0:
            load = min(1.0, max(0.0, (cpu - self._last_cpu) / (dt * self._cpus)))
            decay = math.exp(-dt / self._response_s)
            area = load * dt + (self._activity - load) * self._response_s * (1.0 - decay)
            for i in range(self.n_gpus):
                base = self.curve.idle_power_w + i * self.curve.gpu_step_w
                self._energy_j[i] += base * dt + self.curve.amplitude_w * area
            self._activity = load + (self._activity - load) * decay
            self._last_t, self._last_cpu = now, cpu
        return now - self.origin_s

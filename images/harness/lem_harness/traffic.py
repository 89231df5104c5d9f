"""Traffic simulation (``traffic_simulation``): when each request arrives, and what the load did.

Pure arithmetic, no clock and no engine. The arrival schedule is a list of offsets in
seconds from the start of the measured window, one per prompt, in prompt order:

- ``constant``: request ``i`` arrives at ``i / target_qps``.
- ``poisson``: a Poisson process of rate ``target_qps``: the gaps between consecutive
  arrivals are exponential, ``gap = -ln(1 - u) / target_qps`` with ``u`` the next number of
  ``random.Random(seed)`` (Python's Mersenne Twister, the same on every platform and
  version), so a seed always gives the same offsets.

In both modes the first request arrives at 0 (the window opens with a request, never with
idle time). What the run then achieved (``traffic_metrics``):

- ``offered_qps = (requests − 1) / last arrival offset``: the schedule's own rate (equal to
  the target for ``constant``, a sample of it for ``poisson``);
- ``achieved_qps = requests / window_duration_s``: requests served per second of the
  measured window (vLLM's benchmarks call it request throughput). The window holds ``requests``
  arrivals over ``requests − 1`` gaps plus the last request's processing: an engine that keeps
  up serves close to the offered rate (a little above it with few requests), one that does not
  falls below it, and the queueing delays say by how much;
- queueing delay of a request = start of its processing − its arrival (mean, p50, p90,
  p99, max); the engines say what "start of processing" is (docs/methodology.md);
- energy per request = the window's gross (and idle-adjusted) energy / requests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from lem_harness.contract import EnergyMetrics, TrafficMetrics
from lem_harness.experiment import ExperimentConfig, TrafficSimulationConfig
from lem_harness.measure import percentile


def traffic_seed(config: ExperimentConfig) -> int:
    """``traffic_simulation.seed``, else the experiment's ``random_seed``."""
    seed = config.traffic_simulation.seed
    return config.random_seed if seed is None else seed


def arrival_offsets(count: int, traffic: TrafficSimulationConfig, seed: int) -> tuple[float, ...]:
    """Arrival time of each of ``count`` requests, in seconds from the window's start (ascending)."""
    if count <= 0:
        return ()
    qps = traffic.target_qps
    if traffic.mode == "constant":
        return tuple(i / qps for i in range(count))
    rng = random.Random(seed)
    offsets = [0.0]
    for _ in range(count - 1):
        offsets.append(offsets[-1] - math.log(1.0 - rng.random()) / qps)
    return tuple(offsets)


def queue_delays(offsets: Sequence[float], starts: Sequence[float]) -> list[float]:
    """Each request's wait: the start of its processing minus its arrival (never below 0)."""
    return [max(0.0, start - arrival) for arrival, start in zip(offsets, starts, strict=True)]


def _per(value: float | None, count: int) -> float | None:
    return None if value is None or count <= 0 else value / count


def traffic_metrics(
    config: ExperimentConfig,
    offsets: Sequence[float],
    starts: Sequence[float],
    window_s: float,
    energy: EnergyMetrics | None,
) -> TrafficMetrics:
    """The result's ``traffic`` block from the schedule, the processing starts and the window."""
    traffic = config.traffic_simulation
    count = len(offsets)
    span = offsets[-1] if offsets else 0.0
    delays = queue_delays(offsets, starts) or [0.0]
    return TrafficMetrics(
        mode=traffic.mode,
        seed=traffic_seed(config),
        requests=count,
        target_qps=traffic.target_qps,
        offered_qps=(count - 1) / span if count > 1 and span > 0 else None,
        achieved_qps=count / window_s if window_s > 0 else None,
        schedule_span_s=span,
        queue_delay_mean_s=sum(delays) / len(delays),
        queue_delay_p50_s=percentile(delays, 50),
        queue_delay_p90_s=percentile(delays, 90),
        queue_delay_p99_s=percentile(delays, 99),
        queue_delay_max_s=max(delays),
        energy_per_request_j=_per(energy.gross_energy_j if energy else None, count),
        adjusted_energy_per_request_j=_per(energy.adjusted_energy_j if energy else None, count),
    )

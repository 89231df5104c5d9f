"""Validity flags above the run level: per configuration and per campaign (or comparison).

Run-level flags come from the harness (``RunResult.flags``) and are carried through.
On top of them:

- ``HIGH_CV`` (configuration): a metric's coefficient of variation across cycles is
  above 10 %; the message says how many cycles a ±5 % interval would need.
- ``BASELINE_DRIFT`` (campaign): the mean idle power of the same GPUs moved more than
  10 % between cycles.
- ``GAP_CAP_REACHED`` (campaign, from the manifest): a thermal gap ended at its cap
  before the GPU was back near idle.
- ``MIXED_HARDWARE`` (campaign or comparison): more than one GPU model or driver.
- ``REPETITION_DRIFT_ENERGY`` / ``REPETITION_DRIFT_BASELINE`` (campaign, daemon campaigns):
  a configuration's mean energy per output token, or the mean idle power of the same GPUs,
  moved more than 5 % between the first and the last repetition; the message gives the size
  (first → last, signed) and every repetition's mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lem.results.load import RunRecord
from lem.results.manifest import ManifestInfo
from lem.results.stats import HIGH_CV, Stats

Scope = Literal["run", "config", "campaign"]
BASELINE_DRIFT_LIMIT = 0.10
REPETITION_DRIFT_LIMIT = 0.05
ENERGY_PER_TOKEN = "energy_per_output_token_j"


@dataclass(frozen=True)
class ValidityFlag:
    code: str
    scope: Scope
    message: str
    subjects: tuple[str, ...] = ()  # run ids or configuration names concerned

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def high_cv_flags(name: str, stats: Mapping[str, Stats]) -> tuple[ValidityFlag, ...]:
    """One ``HIGH_CV`` flag for a configuration, naming every metric whose CV is above 10 %."""
    noisy = [(metric, s) for metric, s in stats.items() if s.high_cv and s.cv is not None]
    if not noisy:
        return ()
    parts = [f"{metric} {s.cv * 100:.1f} % ({_cycles_text(s)})" for metric, s in noisy if s.cv is not None]
    message = f"{name}: CV above {HIGH_CV * 100:.0f} % over {noisy[0][1].n} runs for {'; '.join(parts)}"
    return (ValidityFlag("HIGH_CV", "config", message, (name,)),)


def _cycles_text(s: Stats) -> str:
    if s.cycles_for_target is None:
        return "a ±5 % interval needs more cycles than practical"
    return f"~{s.cycles_for_target} cycles for ±5 %"


def campaign_flags(records: Sequence[RunRecord], manifest: ManifestInfo | None) -> tuple[ValidityFlag, ...]:
    return (
        *gap_cap_flags(manifest),
        *baseline_drift_flags(records),
        *mixed_hardware_flags(records),
        *repetition_drift_flags(records),
    )


@dataclass(frozen=True)
class Drift:
    """How a per-repetition mean moved: ``change`` = (last - first) / first."""

    subject: str
    means: tuple[tuple[int, float], ...]  # (repetition, mean), in repetition order

    @property
    def change(self) -> float | None:
        if len(self.means) < 2 or self.means[0][1] <= 0:
            return None
        return (self.means[-1][1] - self.means[0][1]) / self.means[0][1]


def repetition_drifts(records: Iterable[RunRecord]) -> tuple[list[Drift], list[Drift]]:
    """(energy per token per configuration, idle power per set of GPUs) across repetitions."""
    energy: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    idle: dict[tuple[str, ...], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.repetition is None or r.status != "ok":
            continue
        value = r.value(ENERGY_PER_TOKEN)
        if value is not None and math.isfinite(value):
            energy[r.config_name][r.repetition].append(value)
        if r.idle_power_w is not None and math.isfinite(r.idle_power_w):
            idle[r.gpu_uuids][r.repetition].append(r.idle_power_w)
    return (
        [Drift(name, _means(reps)) for name, reps in sorted(energy.items())],
        [Drift(", ".join(gpus) or "unrecorded GPUs", _means(reps)) for gpus, reps in sorted(idle.items())],
    )


def repetition_drift_flags(records: Iterable[RunRecord]) -> tuple[ValidityFlag, ...]:
    energy, idle = repetition_drifts(records)
    out = [
        _drift_flag("REPETITION_DRIFT_ENERGY", d, f"{d.subject}: energy per output token", "J", ".4g")
        for d in energy
    ]
    out += [
        _drift_flag("REPETITION_DRIFT_BASELINE", d, f"idle power on {d.subject}", "W", ".1f") for d in idle
    ]
    return tuple(f for f in out if f is not None)


def _drift_flag(code: str, drift: Drift, what: str, unit: str, spec: str) -> ValidityFlag | None:
    change = drift.change
    if change is None or abs(change) <= REPETITION_DRIFT_LIMIT:
        return None
    (first, a), (last, b) = drift.means[0], drift.means[-1]
    levels = ", ".join(f"{rep}: {mean:{spec}}" for rep, mean in drift.means)
    message = (
        f"{what} moved {change * 100:+.1f} % from repetition {first} ({a:{spec}} {unit}) to repetition "
        f"{last} ({b:{spec}} {unit}) (per repetition: {levels}); the conditions changed between repetitions"
    )
    return ValidityFlag(code, "campaign", message, (drift.subject,))


def _means(by_repetition: Mapping[int, list[float]]) -> tuple[tuple[int, float], ...]:
    return tuple((rep, math.fsum(v) / len(v)) for rep, v in sorted(by_repetition.items()))


def gap_cap_flags(manifest: ManifestInfo | None) -> tuple[ValidityFlag, ...]:
    capped = manifest.gap_capped_runs if manifest is not None else ()
    if not capped:
        return ()
    message = (
        f"{len(capped)} thermal gap(s) reached the configured cap before the GPU was back near idle "
        f"(before {', '.join(capped[:5])}{' …' if len(capped) > 5 else ''}); "
        "those runs may have started warm: lengthen the gap"
    )
    return (ValidityFlag("GAP_CAP_REACHED", "campaign", message, capped),)


def baseline_drift_flags(records: Iterable[RunRecord]) -> tuple[ValidityFlag, ...]:
    """Per set of GPUs: the spread of the per-cycle mean idle power, relative to the lowest."""
    by_gpus: dict[tuple[str, ...], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.idle_power_w is not None and math.isfinite(r.idle_power_w):
            by_gpus[r.gpu_uuids][r.cycle].append(r.idle_power_w)
    out: list[ValidityFlag] = []
    for gpus, cycles in sorted(by_gpus.items()):
        means = {c: math.fsum(v) / len(v) for c, v in sorted(cycles.items())}
        drift = _relative_spread(list(means.values()))
        if drift is not None and drift > BASELINE_DRIFT_LIMIT:
            levels = ", ".join(f"cycle {c}: {m:.1f} W" for c, m in means.items())
            where = ", ".join(gpus) if gpus else "unrecorded GPUs"
            message = (
                f"idle power drifted {drift * 100:.1f} % between cycles on {where} ({levels}); "
                "idle-adjusted energy is less comparable across cycles"
            )
            out.append(ValidityFlag("BASELINE_DRIFT", "campaign", message, gpus))
    return tuple(out)


def mixed_hardware_flags(records: Iterable[RunRecord]) -> tuple[ValidityFlag, ...]:
    models: dict[str, list[str]] = defaultdict(list)
    drivers: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.provenance is None or r.status != "ok":
            continue
        models[" + ".join(g.name for g in r.provenance.gpus) or "no GPU"].append(r.run_id)
        for driver in {g.driver_version or r.provenance.driver_version for g in r.provenance.gpus}:
            if driver:
                drivers[driver].append(r.run_id)
    out: list[ValidityFlag] = []
    for kind, seen in (("GPU models", models), ("drivers", drivers)):
        if len(seen) > 1:
            listing = "; ".join(f"{k} ({len(v)} runs)" for k, v in sorted(seen.items()))
            out.append(
                ValidityFlag(
                    "MIXED_HARDWARE",
                    "campaign",
                    f"results mix {kind}: {listing}; compare like with like",
                    tuple(sorted(seen)),
                )
            )
    return tuple(out)


def _relative_spread(values: list[float]) -> float | None:
    if len(values) < 2 or min(values) <= 0:
        return None
    return (max(values) - min(values)) / min(values)

"""Idle baseline: idle power before the model loads, and a cache that outlives containers.

``idle_power_w`` is the sum over GPUs of each GPU's idle power (so it adds up with
``per_gpu_idle_power_w``). Where the energy counter moved over the idle span, each GPU's
idle power is its counter delta over the span (``with_counter_idle``: the same sensor as
the headline energy); otherwise it is the median of the sampled power, which ignores the
odd spike a mean would absorb. ``idle_power_source`` says which.

``BaselineCache`` keeps one JSON file per (set of GPU UUIDs, image id) in a directory the
host mounts into every container. Entries carry their wall-clock creation time, so their
age is meaningful across processes; an entry older than the TTL, from the future, or
unreadable is a miss (the last two with a warning). Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lem_harness.devices.base import DeviceError, DeviceSample, GpuDevices
from lem_harness.fileio import atomic_write_json
from lem_harness.measure.sampler import MIN_PERIOD_S, Sampler
from lem_harness.measure.stats import median

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1


class BaselineReading(BaseModel):
    """Idle power measured over ``duration_s`` (medians per GPU; ``idle_power_w`` is their sum)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_power_w: float
    per_gpu_idle_power_w: dict[str, float]
    idle_temperature_c: dict[str, float] = Field(default_factory=dict)
    duration_s: float
    samples: int
    idle_power_source: Literal["nvml_counter", "sampled_median"] = "sampled_median"


def with_counter_idle(
    reading: BaselineReading, counter_energy_j: dict[str, float] | None, duration_s: float
) -> BaselineReading:
    """``reading`` with its idle power taken from the energy counter over the same span, where usable.

    The headline energy is the counter's; an idle power from the same sensor keeps
    ``gross − P_idle × t`` free of any offset between the counter and the power field.
    Without a usable counter delta the sampled medians stay (``sampled_median``).
    """
    if not counter_energy_j or duration_s <= 0 or set(counter_energy_j) != set(reading.per_gpu_idle_power_w):
        return reading
    per_gpu = {uuid: joules / duration_s for uuid, joules in counter_energy_j.items()}
    return reading.model_copy(
        update={
            "idle_power_w": sum(per_gpu.values()),
            "per_gpu_idle_power_w": per_gpu,
            "idle_power_source": "nvml_counter",
        }
    )


class _Reading(Protocol):
    @property
    def gpu_uuid(self) -> str: ...
    @property
    def power_w(self) -> float | None: ...
    @property
    def temperature_c(self) -> float | None: ...


def baseline_from_readings(readings: Sequence[_Reading], duration_s: float) -> BaselineReading:
    """Medians per GPU of power and temperature readings (timeline rows or device samples)."""
    power: dict[str, list[float]] = {}
    temperature: dict[str, list[float]] = {}
    for reading in readings:
        if reading.power_w is not None:
            power.setdefault(reading.gpu_uuid, []).append(reading.power_w)
        if reading.temperature_c is not None:
            temperature.setdefault(reading.gpu_uuid, []).append(reading.temperature_c)
    if not power:
        raise DeviceError(f"no idle power readings in {duration_s:g} s; cannot measure the idle baseline")
    per_gpu = {uuid: median(values) for uuid, values in power.items()}
    return BaselineReading(
        idle_power_w=sum(per_gpu.values()),
        per_gpu_idle_power_w=per_gpu,
        idle_temperature_c={uuid: median(values) for uuid, values in temperature.items()},
        duration_s=duration_s,
        samples=min(len(values) for values in power.values()),
    )


def measure_idle_baseline(
    devices: GpuDevices,
    duration_s: float,
    sampler: Sampler | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    *,
    poll_period_s: float = 0.1,
) -> BaselineReading:
    """Median idle power over ``duration_s``.

    With a running ``sampler`` the readings are its timeline rows over the span (the
    caller labels the phase); without one, ``devices`` is polled every ``poll_period_s``
    (never below 50 ms).
    """
    if duration_s <= 0:
        raise ValueError(f"baseline duration must be > 0 s, got {duration_s}")
    if sampler is not None:
        start = sampler.now_t_s()
        sleep(duration_s)
        return baseline_from_readings(sampler.rows_between(start, sampler.now_t_s()), duration_s)
    period = max(poll_period_s, MIN_PERIOD_S)
    deadline = clock() + duration_s
    readings: list[DeviceSample] = []
    while clock() < deadline:
        readings.extend(devices.sample())
        sleep(min(period, max(0.0, deadline - clock())))
    return baseline_from_readings(readings, duration_s)


# --------------------------------------------------------------------------- cache


class _CacheEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = CACHE_SCHEMA_VERSION
    gpu_uuids: list[str]
    image_id: str | None
    created_unix_s: float
    reading: BaselineReading


class BaselineCache:
    """Idle baselines on disk, keyed by GPU UUIDs (order-free) and image id."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.warnings: list[str] = []
        self.last_miss: str | None = None  # why the last ``get`` found nothing

    def path_for(self, gpu_uuids: Sequence[str], image_id: str | None) -> Path:
        key = json.dumps({"gpus": sorted(gpu_uuids), "image": image_id}, sort_keys=True)
        return self.directory / f"baseline-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"

    def get(
        self, gpu_uuids: Sequence[str], image_id: str | None, ttl_s: float, now: float | None = None
    ) -> tuple[BaselineReading, float] | None:
        """``(reading, age_s)`` for a fresh entry, else ``None`` (``last_miss`` says why)."""
        now = time.time() if now is None else now
        path = self.path_for(gpu_uuids, image_id)
        entry = self._load(path)
        if entry is None:
            return None
        age = now - entry.created_unix_s
        if sorted(entry.gpu_uuids) != sorted(gpu_uuids) or entry.image_id != image_id:
            self._miss(f"{path.name} belongs to other GPUs or another image")
        elif age < 0:
            self._miss(f"{path} was written {-age:.0f} s in the future (clock skew); ignored", warn=True)
        elif age > ttl_s:
            self._miss(f"cached baseline is {age:.0f} s old, older than the TTL of {ttl_s:.0f} s")
        else:
            self.last_miss = None
            return entry.reading, age
        return None

    def put(
        self,
        gpu_uuids: Sequence[str],
        image_id: str | None,
        reading: BaselineReading,
        now: float | None = None,
    ) -> Path:
        """Store ``reading`` (atomically) and return the file's path."""
        entry = _CacheEntry(
            gpu_uuids=sorted(gpu_uuids),
            image_id=image_id,
            created_unix_s=time.time() if now is None else now,
            reading=reading,
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(gpu_uuids, image_id)
        atomic_write_json(path, entry)
        return path

    def _load(self, path: Path) -> _CacheEntry | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._miss(f"no cached baseline at {path}")
            return None
        except OSError as e:
            self._miss(f"cached baseline {path} unreadable ({e}); ignored", warn=True)
            return None
        try:
            return _CacheEntry.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "file"
            self._miss(f"cached baseline {path} is corrupt ({where}: {first['msg']}); ignored", warn=True)
            return None

    def _miss(self, reason: str, *, warn: bool = False) -> None:
        self.last_miss = reason
        if warn:
            self.warnings.append(reason)
            logger.warning("%s", reason)

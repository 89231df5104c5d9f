"""Campaign configuration: a grid (or list) of experiments run for several cycles.

Closed pydantic models like the experiment's. Keys that name experiment settings
(``base``, ``grid.axes``, ``experiments[].overrides``, ``group_by``) are checked
against the experiment schema by ``lem.config.campaign_checks`` and by the grid
expansion, which validates every expanded configuration.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, StrictFloat, StrictInt, field_validator, model_validator

from lem.config.slurm import SlurmConfig
from lem.config.yaml_source import YamlDocument
from lem_harness.prompt_sources import DatasetConfig, PromptsConfig
from lem_harness.schema_base import Backend, StrictModel

_DURATION = r"^[1-9][0-9]{0,5}[smhd]$"
_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# group_by fields of a run, not of its configuration (node: the host that ran it, as its result records)
RUN_GROUP_FIELDS = ("repetition", "hour_of_day", "node")


def duration_seconds(text: str) -> float:
    """``"30m"`` -> 1800.0 (units s, m, h, d)."""
    if not re.fullmatch(_DURATION, text):
        raise ValueError(f"{text!r} is not a duration like '30m', '24h' or '7d'")
    return float(int(text[:-1]) * _DURATION_UNITS_S[text[-1]])


class ThermalGapConfig(StrictModel):
    """Temperature-gated gaps: start the next run once every GPU is back near idle."""

    temperature_tolerance_c: StrictFloat = Field(3.0, gt=0.0, le=50.0)
    power_tolerance_w: StrictFloat = Field(15.0, gt=0.0, le=1_000.0)
    min_gap_seconds: StrictFloat = Field(10.0, ge=0.0, le=86_400.0)
    poll_interval_seconds: StrictFloat = Field(2.0, ge=0.1, le=600.0)
    end_when_settled: bool = True  # also end once cooling has flattened out (lem.campaign.settling)
    # also end once no GPU is warmer than it was at the start of an earlier run of this campaign
    # (the start-temperature spread cannot grow; gaps longer than the one that set it shorten)
    end_at_warmest_start: bool = False


class ExecutionConfig(StrictModel):
    """How the runs are ordered and spaced."""

    cycles: StrictInt = Field(3, ge=1, le=1_000)
    structure: Literal["interleaved", "shuffled", "grouped"] = "interleaved"
    seed: StrictInt = Field(42, ge=0, le=2**32 - 1)
    warmup_prompts: StrictInt | None = Field(None, ge=0, le=10_000)
    warmup_timeout_seconds: StrictFloat | None = Field(None, gt=0.0, le=86_400.0)
    config_gap_seconds: StrictFloat = Field(60.0, ge=0.0, le=86_400.0)
    cycle_gap_seconds: StrictFloat = Field(300.0, ge=0.0, le=86_400.0)
    gap_mode: Literal["fixed", "thermal"] = "fixed"
    thermal: ThermalGapConfig = Field(default_factory=ThermalGapConfig)
    retries: StrictInt = Field(0, ge=0, le=10)
    max_consecutive_failures: StrictInt = Field(
        3, ge=0, le=10_000
    )  # same error class in a row → stop; 0: never
    timeout_seconds: StrictFloat = Field(3_600.0, gt=0.0, le=7 * 86_400.0)

    @model_validator(mode="after")
    def _thermal_bounds(self) -> ExecutionConfig:
        if self.gap_mode == "thermal":
            cap = min(self.config_gap_seconds, self.cycle_gap_seconds)
            if self.thermal.min_gap_seconds > cap:
                raise ValueError(
                    f"execution.thermal.min_gap_seconds ({self.thermal.min_gap_seconds:g}) must be <= "
                    f"config_gap_seconds and cycle_gap_seconds (the gaps are the maximum wait; {cap:g})"
                )
        return self


class ColdStartConfig(StrictModel):
    force_cold_start: bool = False
    drop_page_cache: bool = False


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SETS: dict[str, tuple[Weekday, ...]] = {"weekdays": WEEKDAYS[:5], "weekends": WEEKDAYS[5:]}


class DaemonConfig(StrictModel):
    """Repeat the whole campaign on a schedule: first at ``at`` (or at once), then every ``interval``.

    Each pass is a *repetition*. ``total_duration`` (from the schedule's start) and ``repetitions``
    end the schedule; ``days`` keeps only the starts that fall on those local weekdays;
    ``on_overrun`` says what happens to a start that passed while a repetition was still running.
    """

    enabled: bool = False
    at: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    interval: str | None = Field(None, pattern=_DURATION)
    total_duration: str | None = Field(None, pattern=_DURATION)
    repetitions: int | None = Field(None, ge=1, le=100_000)
    days: tuple[Weekday, ...] | None = Field(None, min_length=1, max_length=7)
    on_overrun: Literal["queue", "skip"] = "queue"

    @field_validator("days", mode="before")
    @classmethod
    def _day_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value in _DAY_SETS:
                return _DAY_SETS[value]
            raise ValueError(
                f"daemon.days is {value!r}: give 'weekdays', 'weekends' or a list like [mon, wed]"
            )
        return value

    @model_validator(mode="after")
    def _schedule(self) -> DaemonConfig:
        if self.enabled and self.at is None and self.interval is None:
            raise ValueError("daemon.enabled needs daemon.at ('HH:MM') or daemon.interval ('24h', '30m')")
        if self.days is not None and len(set(self.days)) != len(self.days):
            raise ValueError(f"daemon.days lists a day twice: {list(self.days)}")
        return self

    @property
    def interval_s(self) -> float:
        """Seconds between starts: ``interval``, or a day when only ``at`` is given."""
        return duration_seconds(self.interval) if self.interval else 86_400.0

    @property
    def weekdays(self) -> frozenset[int]:
        """The allowed local weekdays as ``datetime.weekday()`` numbers (Monday 0); all when unset."""
        return frozenset(WEEKDAYS.index(d) for d in (self.days or WEEKDAYS))


class GridConfig(StrictModel):
    """Every combination of the axis values, for each backend."""

    backends: tuple[Backend, ...] = Field(min_length=1, max_length=3)
    axes: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("backends")
    @classmethod
    def _unique_backends(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"grid.backends lists a backend twice: {list(value)}")
        return value

    @field_validator("axes")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in value.items():
            if not values:
                raise ValueError(f"grid.axes.{name} is an empty list; give at least one value")
            if len(values) > 10_000:
                raise ValueError(f"grid.axes.{name} has {len(values)} values; at most 10,000")
        return value


class ExperimentEntry(StrictModel):
    """One explicit experiment: a file (relative to the campaign file) plus dotted overrides."""

    file: str = Field(min_length=1, max_length=1_000)
    overrides: dict[str, Any] = Field(default_factory=dict)


class CampaignConfig(StrictModel):
    """A campaign: what to run (``grid`` and/or ``experiments``) and how (``execution``)."""

    schema_version: str | None = None
    campaign_name: str = Field(pattern=_NAME)
    model: str | None = Field(None, min_length=1, max_length=1_000)
    dataset: DatasetConfig | None = None
    prompts: PromptsConfig | None = None
    num_samples: StrictInt | None = Field(None, ge=1, le=1_000_000)
    base: dict[str, Any] = Field(default_factory=dict)
    grid: GridConfig | None = None
    experiments: tuple[ExperimentEntry, ...] = ()
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    group_by: tuple[str, ...] = ()
    results_dir: str = Field("results", min_length=1, max_length=1_000)
    # Host directories (absolute) a local model or dataset may also come from, besides the
    # campaign file's directory and the results directory; mounted read-only, never the cwd.
    input_roots: tuple[Annotated[str, Field(min_length=2, max_length=1_000, pattern=r"^/")], ...] = ()

    _source: YamlDocument | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _dataset_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("dataset"), str):
            data = {**data, "dataset": {"name": data["dataset"]}}
        return data

    @model_validator(mode="after")
    def _something_to_run(self) -> CampaignConfig:
        if self.grid is None and not self.experiments:
            raise ValueError("a campaign needs a 'grid' (backends x axes) or an 'experiments' list")
        return self

    @property
    def source(self) -> YamlDocument | None:
        """The YAML document this campaign was loaded from (for line numbers), if any."""
        return self._source

    def with_source(self, document: YamlDocument) -> CampaignConfig:
        self._source = document
        return self


CAMPAIGN_KEYS = frozenset(CampaignConfig.model_fields) - {"schema_version", "model", "dataset", "prompts"}

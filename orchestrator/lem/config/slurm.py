"""The campaign's ``slurm:`` section: how ``--runtime slurm`` submits the campaign's lanes.

Closed like every config model. Every string that reaches a job script is checked here
(names, ``#SBATCH`` options) *and* shell-quoted by the script template
(``lem.runtime.slurm_script``), so a config value never reaches a shell unquoted.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lem_harness.schema_base import StrictModel

_SLURM_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
_OPTION = re.compile(r"^--([a-z][a-z0-9-]*)(=[^\n\r\x00]{1,500})?$")
# Options lem writes itself; a duplicate in extra_sbatch would silently override them.
RESERVED_OPTIONS = frozenset(
    {
        "job-name",
        "output",
        "error",
        "time",
        "nodes",
        "ntasks",
        "gres",
        "gpus",
        "partition",
        "account",
        "qos",
        "constraint",
        "exclusive",
        "parsable",
        "chdir",
        "array",
        "wrap",
    }
)
_OWN_KEYS = {
    "time": "run_time_limit_minutes",
    "gres": "gpus_per_run",
    "gpus": "gpus_per_run",
    "partition": "partition",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "exclusive": "exclusive",
}
Launcher = Literal["docker", "apptainer", "local"]


class SlurmConfig(StrictModel):
    """Where and how the campaign's lanes run as Slurm jobs (one job per lane, one node each)."""

    partition: str | None = Field(None, pattern=_SLURM_NAME)
    account: str | None = Field(None, pattern=_SLURM_NAME)
    qos: str | None = Field(None, pattern=_SLURM_NAME)
    constraint: str | None = Field(None, pattern=r"^[A-Za-z0-9_.&|*\[\]()-]{1,200}$")
    # Per run: the job's --time is the sum over its lane's runs, plus setup_minutes.
    run_time_limit_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    setup_minutes: int = Field(10, ge=0, le=24 * 60)
    gpus_per_run: int | None = Field(None, ge=0, le=64)  # default: the most `gpus` any config lists
    max_nodes: int = Field(4, ge=1, le=10_000)  # lanes (jobs) at most, so nodes held at once
    exclusive: bool = False
    pin_configs: bool = False  # every cycle of a configuration in one lane (one node, one GPU set)
    launcher: Launcher = "docker"
    apptainer_image_dir: str | None = Field(None, min_length=1, max_length=1_000)
    python: str | None = Field(None, min_length=1, max_length=1_000)  # interpreter with lem on the nodes
    expected_run_seconds: float | None = Field(None, gt=0.0, le=7 * 86_400.0)  # for lanes and ETA
    poll_interval_seconds: float = Field(15.0, ge=0.2, le=3_600.0)
    extra_sbatch: tuple[str, ...] = Field((), max_length=50)

    @field_validator("extra_sbatch")
    @classmethod
    def _options(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        for line in lines:
            match = _OPTION.match(line)
            if match is None:
                raise ValueError(
                    f"slurm.extra_sbatch entry {line!r} is not one long sbatch option like "
                    "'--mem=64G' or '--mail-type=END' (one line, starting with --)"
                )
            option = match.group(1)
            if option in RESERVED_OPTIONS:
                key = _OWN_KEYS.get(option)
                use = f"use slurm.{key}" if key else "lem sets it for every lane job"
                raise ValueError(f"slurm.extra_sbatch sets --{option}, which lem writes itself; {use}")
        return lines

    @model_validator(mode="after")
    def _apptainer_images(self) -> SlurmConfig:
        if self.launcher == "apptainer" and self.apptainer_image_dir is None:
            raise ValueError(
                "slurm.launcher: apptainer needs slurm.apptainer_image_dir, the shared directory holding "
                "the backend images as .sif files (apptainer build DIR/IMAGE.sif docker-daemon://IMAGE)"
            )
        return self


SLURM_KEYS = tuple(SlurmConfig.model_fields)

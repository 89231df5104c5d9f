"""The campaign's closed ``slurm:`` section and the ``--slurm KEY=VALUE`` overrides."""

from __future__ import annotations

from typing import Any

import click
import pytest
from pydantic import ValidationError

from lem.cli.slurm_cmd import apply_overrides
from lem.config.slurm import SlurmConfig
from tests.unit.campaign.helpers import campaign_config


def slurm(**values: Any) -> SlurmConfig:
    return SlurmConfig.model_validate(values)


def test_defaults() -> None:
    cfg = slurm()
    assert (cfg.max_nodes, cfg.launcher, cfg.pin_configs, cfg.poll_interval_seconds) == (
        4,
        "docker",
        False,
        15.0,
    )
    assert (cfg.partition, cfg.run_time_limit_minutes, cfg.gpus_per_run, cfg.extra_sbatch) == (
        None,
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"partitions": "gpu"}, "Extra inputs are not permitted"),
        ({"partition": "gpu; rm -rf /"}, "should match pattern"),
        ({"account": "$(id)"}, "should match pattern"),
        ({"launcher": "singularity"}, "'docker', 'apptainer' or 'local'"),
        ({"max_nodes": 0}, "greater than or equal to 1"),
        ({"extra_sbatch": ["--mem=64G\n#SBATCH --wrap=x"]}, "is not one long sbatch option"),
        ({"extra_sbatch": ["mem=64G"]}, "is not one long sbatch option"),
        ({"extra_sbatch": ["--time=5"]}, "sets --time, which lem writes itself"),
        ({"extra_sbatch": ["--gres=gpu:8"]}, "sets --gres, which lem writes itself; use slurm.gpus_per_run"),
        ({"launcher": "apptainer"}, "launcher: apptainer needs slurm.apptainer_image_dir"),
    ],
)
def test_bad_values_are_refused_with_the_key(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        slurm(**values)
    assert expected in str(info.value)


def test_extra_sbatch_takes_long_options() -> None:
    assert slurm(extra_sbatch=["--mem=64G", "--mail-type=END", "--requeue"]).extra_sbatch == (
        "--mem=64G",
        "--mail-type=END",
        "--requeue",
    )


def test_a_campaign_file_carries_the_section() -> None:
    campaign = campaign_config(slurm={"partition": "gpu", "pin_configs": True, "max_nodes": 8})
    assert (campaign.slurm.partition, campaign.slurm.pin_configs, campaign.slurm.max_nodes) == (
        "gpu",
        True,
        8,
    )


def test_overrides_are_read_as_yaml_and_validated() -> None:
    campaign = campaign_config(slurm={"partition": "gpu", "max_nodes": 8})
    changed = apply_overrides(campaign, ["max_nodes=2", "qos=high", "extra_sbatch=['--mem=8G']"])
    assert (changed.slurm.partition, changed.slurm.max_nodes, changed.slurm.qos) == ("gpu", 2, "high")
    assert changed.slurm.extra_sbatch == ("--mem=8G",)
    with pytest.raises(click.UsageError, match=r"did you mean max_nodes\?"):
        apply_overrides(campaign, ["max_node=2"])
    with pytest.raises(
        click.UsageError, match="--slurm max_nodes: Input should be greater than or equal to 1"
    ):
        apply_overrides(campaign, ["max_nodes=0"])

"""A campaign wired with fakes: fake runtime, fake clock, no NVML, results in tmp_path."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner, Result

from lem.campaign.clock import FakeClock
from lem.campaign.expand import Expansion, expand_campaign
from lem.campaign.gaps import GpuProbe
from lem.campaign.launch import LaunchRequest, LaunchResult, LaunchServices, launch_campaign
from lem.campaign.manifest import MANIFEST_FILE, Manifest
from lem.campaign.plan import PlannedRun, plan_campaign
from lem.campaign.progress import LogProgress
from lem.cli.campaign_cmd import campaign
from lem.cli.run_cmd import RunDeps
from lem.config.campaign import CampaignConfig
from lem_harness.devices.base import DeviceUnavailableError
from tests.support.fake_runtime import FakeRuntime

RUN_IDS = ["pytorch-bs1-c01", "pytorch-bs2-c01", "pytorch-bs1-c02", "pytorch-bs2-c02"]


def campaign_config(execution: dict[str, Any] | None = None, **top: Any) -> CampaignConfig:
    """2 configurations (batch size 1, 2) x 2 cycles, gaps 0 unless ``execution`` says otherwise."""
    data: dict[str, Any] = {
        "campaign_name": "demo",
        "model": "org/tiny-model",
        "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 8},
        "base": {"measurement": {"device": "simulated"}, "max_output_tokens": 4},
        "grid": {"backends": ["pytorch"], "axes": {"pytorch.batch_size": [1, 2]}},
        "execution": {"cycles": 2, "config_gap_seconds": 0, "cycle_gap_seconds": 0, **(execution or {})},
        **top,
    }
    return CampaignConfig.model_validate(data)


def no_nvml(uuids: Sequence[str]) -> GpuProbe:
    raise DeviceUnavailableError("NVML could not be initialised (library not found)")


@dataclass
class Bench:
    """One campaign under test. ``launch`` runs it through the real launch path."""

    root: Path
    campaign: CampaignConfig
    clock: FakeClock = field(default_factory=FakeClock)
    stop: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)
    runtime: FakeRuntime = field(init=False)
    expansion: Expansion = field(init=False)
    runs: list[PlannedRun] = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = FakeRuntime(clock=self.clock.advance)
        self.expansion = expand_campaign(self.campaign, self.root)
        self.runs = plan_campaign(self.campaign, self.expansion)

    @property
    def results_root(self) -> Path:
        return self.root / "results"

    @property
    def campaign_dir(self) -> Path:
        return self.results_root / self.campaign.campaign_name

    def launch(
        self, *, resume: bool = False, fail_fast: bool = False, probe_factory: Any = no_nvml
    ) -> LaunchResult:
        self.stop.clear()
        request = LaunchRequest(
            campaign=self.campaign,
            campaign_file=self.root / "campaign.yaml",
            expansion=self.expansion,
            runs=self.runs,
            results_root=self.results_root,
            resume=resume,
            fail_fast=fail_fast,
            project_root=self.root,
        )
        services = LaunchServices(
            runtime=self.runtime,
            clock=self.clock,
            stop=self.stop,
            progress=LogProgress(self.clock, self.lines.append),
            probe_factory=probe_factory,
            inventory=lambda indices: ({}, None),
            registry=self.root / "live",
            host_env={},
        )
        return launch_campaign(request, services)

    def manifest(self) -> Manifest:
        return Manifest.load(self.campaign_dir / MANIFEST_FILE)

    def statuses(self) -> list[str]:
        return [e.status for e in self.manifest().entries()]


def make_bench(tmp_path: Path, execution: dict[str, Any] | None = None, **top: Any) -> Bench:
    return Bench(tmp_path, campaign_config(execution, **top))


class Cli:
    """A command that runs experiments (``lem campaign``, ``lem experiment``) wired with fakes."""

    def __init__(self, tmp_path: Path, yaml_text: str, file_name: str = "campaign.yaml") -> None:
        self.tmp_path = tmp_path
        self.file = tmp_path / file_name
        self.file.write_text(yaml_text)
        self.clock = FakeClock()
        self.runtime = FakeRuntime(clock=self.clock.advance)
        self.asked: list[str] = []
        self.results = tmp_path / "results"

    def deps(self) -> RunDeps:
        def factory(name: str) -> FakeRuntime:
            self.asked.append(name)
            return self.runtime

        return RunDeps(
            runtime_factory=factory,
            clock=self.clock,
            probe_factory=no_nvml,
            inventory=lambda indices: ({}, None),
            registry=self.tmp_path / "live",
            host_env={},
        )

    def invoke(self, *args: str, subcommand: bool = False, command: click.Command = campaign) -> Result:
        """``lem campaign [run] FILE --quiet --results-dir … ARGS`` (or ``command FILE …``)."""
        argv = [
            *(["run"] if subcommand else []),
            str(self.file),
            "--quiet",
            "--results-dir",
            str(self.results),
            *args,
        ]
        return CliRunner().invoke(command, argv, obj=self.deps(), catch_exceptions=False)

"""The two files each run starts from: its ``RunSpec`` (spec.json) and its ``ContainerSpec``.

Both are pure functions of the planned run, its configuration and the campaign's settings;
``lem.runtime.spec_builder`` owns every container decision, this module only fills it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lem.campaign.expand import ExpandedConfig
from lem.campaign.plan import PlannedRun
from lem.runtime.process import ProcessId
from lem.runtime.spec import ContainerSpec
from lem.runtime.spec_builder import RunPaths, build_container_spec, container_cache_dirs
from lem_harness.contract import ImageInfo, RunSpec


@dataclass(frozen=True)
class CampaignSpecs:
    """Builds each run's specs for one campaign (implements ``executor.SpecFactory``)."""

    campaign_id: str
    images: Mapping[str, str]  # backend -> image reference
    results_root: Path
    project_root: Path
    timeout_s: float
    extra_roots: tuple[Path, ...] = ()
    gpu_uuids_by_index: Mapping[int, str] = field(default_factory=dict)
    host_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    owner: ProcessId | None = None  # the lem process, labelled on every container
    _built: dict[tuple[str, Path], ContainerSpec] = field(default_factory=dict, repr=False, compare=False)

    def run_spec(self, run: PlannedRun, config: ExpandedConfig) -> RunSpec:
        caches = container_cache_dirs(run.backend)
        return RunSpec(
            run_id=run.run_id,
            campaign_id=self.campaign_id,
            config_id=run.config_id,
            config_name=run.name,
            cycle=run.cycle,
            config=config.config,
            baseline_cache_dir=caches["baseline_cache_dir"],
            engine_cache_dir=caches["engine_cache_dir"],
            image=ImageInfo(name=self.images[run.backend]),
        )

    def container_spec(self, run: PlannedRun, config: ExpandedConfig, run_dir: Path) -> ContainerSpec:
        """Built once per run (the campaign checks them all before it starts, then reuses them)."""
        key = (run.run_id, run_dir)
        if key not in self._built:
            self._built[key] = self._build(run, config, run_dir)
        return self._built[key]

    def _build(self, run: PlannedRun, config: ExpandedConfig, run_dir: Path) -> ContainerSpec:
        paths = RunPaths(
            run_dir=run_dir,
            results_root=self.results_root,
            project_root=self.project_root,
            extra_roots=self.extra_roots,
        )
        return build_container_spec(
            run,
            config.config,
            paths,
            image=self.images[run.backend],
            campaign_id=self.campaign_id,
            gpu_uuids_by_index=self.gpu_uuids_by_index,
            host_env=self.host_env,
            timeout_s=self.timeout_s,
            owner=self.owner,
        )

    def gpu_uuids(self, configs: Mapping[str, ExpandedConfig]) -> list[str]:
        """Every host GPU the campaign's containers get, in first-use order (for the thermal probe)."""
        seen: dict[str, None] = {}
        for expanded in configs.values():
            if expanded.config.measurement.device == "simulated":
                continue
            for index in expanded.config.gpus:
                uuid = self.gpu_uuids_by_index.get(index)
                if uuid is not None:
                    seen.setdefault(uuid, None)
        return list(seen)

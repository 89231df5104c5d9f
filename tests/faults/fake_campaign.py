"""A 1,000-run campaign against a fake runtime, in its own process, to be SIGKILLed by the test.

    python -m tests.faults.fake_campaign RESULTS_ROOT EVENTS CONTROL_DIR [--resume] [--hold-at N]

100 configurations x 10 cycles, gaps 0, ``execution.retries: 1``. The runs listed in
``CONTROL_DIR/fail`` fail on their first attempt (a failed result, exit 1). With ``--hold-at N``
the N-th run this process starts writes ``CONTROL_DIR/held`` and blocks until the process is
killed: the test synchronises on that file, never on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from lem.campaign.clock import FakeClock
from lem.campaign.expand import expand_campaign
from lem.campaign.gaps import GpuProbe
from lem.campaign.launch import LaunchRequest, LaunchServices, launch_campaign
from lem.campaign.plan import plan_campaign
from lem.campaign.progress import LogProgress
from lem.config.campaign import CampaignConfig
from lem.runtime.spec import ContainerSpec, RunOutcome
from lem_harness.devices.base import DeviceUnavailableError
from tests.faults import events
from tests.support.fake_runtime import FAIL, FakeRuntime, Play

CONFIGS, CYCLES = 100, 10


def campaign() -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaign_name": "faults",
            "model": "org/tiny-model",
            "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 8},
            "base": {"measurement": {"device": "simulated"}, "max_output_tokens": 4},
            "grid": {"backends": ["pytorch"], "axes": {"pytorch.batch_size": list(range(1, CONFIGS + 1))}},
            "execution": {"cycles": CYCLES, "config_gap_seconds": 0, "cycle_gap_seconds": 0, "retries": 1},
        }
    )


def no_nvml(uuids: Sequence[str]) -> GpuProbe:
    raise DeviceUnavailableError("no NVML in the fault suite")


class Recording(FakeRuntime):
    """The fake runtime, logging each run's start and end and holding the lock a measurement would."""

    def configure(self, log_path: Path, control: Path, hold_at: int | None) -> None:
        self.log_path, self.control, self.hold_at = log_path, control, hold_at

    def run(self, spec: ContainerSpec, stop: threading.Event) -> RunOutcome:
        run_dir = Path(spec.run_dir() or "")
        fd = events.begin_measuring(self.log_path, run_dir, spec.run_id)
        try:
            if sum(self.started.values()) + 1 == self.hold_at:
                events.publish(self.control / "held", spec.run_id)
                threading.Event().wait()  # until SIGKILL
            outcome = super().run(spec, stop)
            events.log(self.log_path, "end", spec.run_id, os.getpid(), outcome.status)
            return outcome
        finally:
            os.close(fd)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("events", type=Path)
    parser.add_argument("control", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hold-at", type=int)
    args = parser.parse_args(argv)
    cfg = campaign()
    expansion = expand_campaign(cfg, args.results.parent)
    runs = plan_campaign(cfg, expansion)
    clock = FakeClock()
    failing = set((args.control / "fail").read_text().split())
    runtime = Recording(clock=clock.advance, script={run_id: [FAIL, Play()] for run_id in failing})
    runtime.configure(args.events, args.control, args.hold_at)
    request = LaunchRequest(
        campaign=cfg,
        campaign_file=args.results.parent / "campaign.yaml",
        expansion=expansion,
        runs=runs,
        results_root=args.results,
        resume=args.resume,
    )
    services = LaunchServices(
        runtime=runtime,
        clock=clock,
        stop=threading.Event(),
        progress=LogProgress(clock, lambda line: None),
        probe_factory=no_nvml,
        inventory=lambda indices: ({}, None),
        registry=args.results.parent / "runtime",
        host_env={},
        page_cache_path=args.results.parent / "no-drop-caches",
    )
    result = launch_campaign(request, services)
    return result.report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

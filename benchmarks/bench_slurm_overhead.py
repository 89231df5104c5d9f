"""What ``--runtime slurm`` adds per run over the local executor, and what Slurm's commands cost.

1. In-process (no Slurm needed): the same campaign (fake runtime, fake clock: bookkeeping only)
   run by the local executor, then by the Slurm orchestrator with an in-process Slurm
   (``tests.support.fake_slurm``) whose jobs run their lanes through the same executor. The
   difference per run is the orchestrator's own work: lane split, lane files and scripts, lane
   manifests on top of the campaign's, polls that read and merge them.
2. One poll of a big campaign: ``Follower.poll`` over L lanes of R runs each (every lane's
   manifest read and compared, the merged manifest saved) — the login node's steady cost.
3. Real Slurm, when ``sinfo`` answers: the wall time of ``sbatch --parsable`` (one lane-sized
   script), of one ``squeue`` for 16 job ids, and submit → RUNNING → gone for a job that exits at once.

    .venv/bin/python benchmarks/bench_slurm_overhead.py [--configs 20] [--cycles 5] [--lanes 4]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lem.campaign.cluster import ClusterRequest, ClusterServices, run_cluster  # noqa: E402
from lem.campaign.expand import expand_campaign  # noqa: E402
from lem.campaign.launch import LaunchRequest, LaunchServices, launch_campaign  # noqa: E402
from lem.campaign.plan import plan_campaign  # noqa: E402
from lem.campaign.progress import LogProgress  # noqa: E402
from lem.config.campaign import CampaignConfig  # noqa: E402
from lem.runtime.slurm import CommandSlurm  # noqa: E402
from tests.support.fake_runtime import FakeRuntime  # noqa: E402
from tests.support.fake_slurm import FakeSlurm, _no_probe  # noqa: E402


def campaign(configs: int, cycles: int, lanes: int) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaign_name": "overhead",
            "model": "org/tiny-model",
            "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 8},
            "base": {"measurement": {"device": "simulated"}, "max_output_tokens": 4},
            "grid": {"backends": ["pytorch"], "axes": {"pytorch.batch_size": list(range(1, configs + 1))}},
            "execution": {"cycles": cycles, "config_gap_seconds": 60, "cycle_gap_seconds": 300},
            "slurm": {"launcher": "local", "max_nodes": lanes, "pin_configs": True},
        }
    )


def local_run(root: Path, cfg: CampaignConfig) -> float:
    expansion = expand_campaign(cfg, root)
    slurm = FakeSlurm(root, cfg, expansion)  # only for its clock and fake runtime settings
    runtime = FakeRuntime(clock=slurm.clock.advance)
    request = LaunchRequest(
        campaign=cfg,
        campaign_file=root / "campaign.yaml",
        expansion=expansion,
        runs=plan_campaign(cfg, expansion),
        results_root=root / "local",
        project_root=root,
    )
    services = LaunchServices(
        runtime=runtime,
        clock=slurm.clock,
        stop=threading.Event(),
        progress=LogProgress(slurm.clock, lambda line: None),
        probe_factory=_no_probe,
        inventory=lambda indices: ({}, None),
        registry=root / "live-local",
        host_env={},
    )
    started = time.perf_counter()
    launch_campaign(request, services)
    return time.perf_counter() - started


def slurm_run(root: Path, cfg: CampaignConfig) -> tuple[float, int]:
    expansion = expand_campaign(cfg, root)
    slurm = FakeSlurm(root, cfg, expansion)
    slurm.world = [lambda s: [s.start(j) for j in list(s.state)]]
    request = ClusterRequest(
        campaign=cfg,
        campaign_file=root / "campaign.yaml",
        expansion=expansion,
        runs=plan_campaign(cfg, expansion),
        results_root=root / "slurm",
        project_root=root,
    )
    services = ClusterServices(slurm, slurm.clock, threading.Event(), lambda line: None, root / "live-slurm")
    started = time.perf_counter()
    result = run_cluster(request, services)
    assert result.report.done == len(request.runs), result.report
    return time.perf_counter() - started, slurm.polls


def poll_cost(root: Path, lanes: int, per_lane: int) -> float:
    """One poll over every lane of a finished campaign of ``lanes`` x ``per_lane`` runs (median of 5)."""
    cfg = campaign(lanes, per_lane, lanes)
    expansion = expand_campaign(cfg, root)
    slurm = FakeSlurm(root, cfg, expansion)
    slurm.world = [lambda s: [s.start(j, end_as="RUNNING") for j in list(s.state)]]
    request = ClusterRequest(
        campaign=cfg,
        campaign_file=root / "campaign.yaml",
        expansion=expansion,
        runs=plan_campaign(cfg, expansion),
        results_root=root / "poll",
        project_root=root,
        detach=True,
    )
    services = ClusterServices(slurm, slurm.clock, threading.Event(), lambda line: None, root / "live-poll")
    run_cluster(request, services)  # submits; the detach poll runs every lane (jobs stay RUNNING)
    from lem.campaign.cluster import Follower, LaneSet
    from lem.campaign.lane_file import read_state
    from lem.campaign.manifest import Manifest

    state = read_state(request.campaign_dir)
    assert state is not None
    manifest = Manifest.load(request.campaign_dir / "manifest.json")
    follower = Follower(request.campaign_dir, LaneSet(state, {}), manifest, services, 300.0)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        follower.poll()
        times.append(time.perf_counter() - started)
    manifest.close()
    return sorted(times)[2]


def real_slurm(root: Path) -> dict[str, float] | None:
    if shutil.which("sinfo") is None:
        return None
    if subprocess.run(["sinfo"], capture_output=True, check=False).returncode != 0:
        return None
    client = CommandSlurm()
    script = "#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --time=1\ntrue\n"
    started = time.perf_counter()
    job = client.submit(script, root)
    submitted = time.perf_counter()
    seen_running = gone = None
    while gone is None and time.perf_counter() - submitted < 120:
        state = client.states([job]).get(job)
        now = time.perf_counter()
        if state is not None and state.state in ("RUNNING", "COMPLETING") and seen_running is None:
            seen_running = now
        if state is not None and not state.active:
            gone = now
        time.sleep(0.05)
    ids = [job] * 16
    t0 = time.perf_counter()
    for _ in range(10):
        client.states(ids)
    squeue_s = (time.perf_counter() - t0) / 10
    return {
        "sbatch_s": submitted - started,
        "squeue_16_jobs_s": squeue_s,
        "submit_to_ended_s": (gone or float("nan")) - submitted,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=4)
    args = parser.parse_args(argv)
    runs = args.configs * args.cycles
    with tempfile.TemporaryDirectory(prefix="lem-bench-slurm-") as tmp:
        root = Path(tmp)
        cfg = campaign(args.configs, args.cycles, args.lanes)
        local_s = local_run(root, cfg)
        slurm_s, polls = slurm_run(root, cfg)
        print(f"{runs} runs, {args.lanes} lanes (fake runtime, bookkeeping only)")
        print(f"local executor:      {local_s:7.2f} s  ({1000 * local_s / runs:6.1f} ms/run)")
        print(f"slurm orchestrator:  {slurm_s:7.2f} s  ({1000 * slurm_s / runs:6.1f} ms/run, {polls} polls)")
        print(f"overhead:            {1000 * (slurm_s - local_s) / runs:6.1f} ms/run")
        for lanes, per_lane in ((4, 10), (16, 10), (64, 10)):
            cost = poll_cost(root / f"p{lanes}", lanes, per_lane)
            print(f"one poll, {lanes} lanes x {per_lane} runs: {1000 * cost:7.1f} ms")
        real = real_slurm(root)
        if real is None:
            print("real Slurm: no cluster answers (scripts/ci/slurm_cluster.sh)")
        else:
            print(
                f"real Slurm: sbatch {1000 * real['sbatch_s']:.0f} ms, squeue (16 ids) "
                f"{1000 * real['squeue_16_jobs_s']:.0f} ms, submit -> ended {real['submit_to_ended_s']:.2f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

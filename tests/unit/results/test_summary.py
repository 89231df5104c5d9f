"""Aggregation over the golden trees: exact statistics, exclusions, flags, group_by, robustness."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import pytest

from lem.results.fields import UnknownFieldError, known_fields, resolve_field, validate_fields
from lem.results.load import NoResultsError, find_result_files, load_results, read_run_result
from lem.results.summary import CampaignSummary, Excluded, summarize_campaign, summarize_records
from lem_harness.experiment import ExperimentConfig

scipy_stats = pytest.importorskip("scipy.stats")
TOKENS = 1280


def _expected(values: list[float]) -> tuple[float, float, float, float]:
    """mean, sample std, and the Student-t 95 % interval, computed with scipy."""
    n = len(values)
    mean = sum(values) / n
    low, high = scipy_stats.t.interval(0.95, n - 1, loc=mean, scale=scipy_stats.sem(values))
    return mean, float(scipy_stats.tstd(values)), float(low), float(high)


def _assert_stats(summary: CampaignSummary, config: str, metric: str, values: list[float]) -> None:
    s = next(c for c in summary.configs if c.name == config).stat(metric)
    mean, std, low, high = _expected(values)
    assert s.n == len(values)
    assert s.mean == pytest.approx(mean, abs=1e-12)
    assert s.std == pytest.approx(std, abs=1e-12)
    assert s.ci_low == pytest.approx(low, abs=1e-9)
    assert s.ci_high == pytest.approx(high, abs=1e-9)
    assert (s.min, s.max) == pytest.approx((min(values), max(values)))


# --------------------------------------------------------------------------- exact numbers


def test_alpha_exact_statistics(alpha: CampaignSummary) -> None:
    # bs1: cycles 1 and 2 (cycle 3 has an old contract version); gross = power x duration.
    _assert_stats(alpha, "pytorch-bs1-float16", "energy_per_output_token_j", [4000 / TOKENS, 4200 / TOKENS])
    _assert_stats(alpha, "pytorch-bs1-float16", "adjusted_energy_j", [4000 - 60 * 20, 4200 - 60 * 21])
    # bs4: cycle 2 failed.
    _assert_stats(alpha, "pytorch-bs4-float16", "gross_energy_j", [2400.0, 290 * 8.5])
    _assert_stats(alpha, "pytorch-bs4-float16", "output_tokens_per_s", [TOKENS / 8.0, TOKENS / 8.5])
    # vllm: cycle 3 is corrupt; TTFT and ITL present only here.
    _assert_stats(alpha, "vllm-float16", "ttft_mean_s", [0.05, 0.06])
    _assert_stats(alpha, "vllm-float16", "avg_power_w", [350.0, 340.0])
    bs1 = next(c for c in alpha.configs if c.name == "pytorch-bs1-float16")
    assert "ttft_mean_s" not in bs1.stats and bs1.stat("ttft_mean_s").n == 0


def test_beta_exact_statistics_and_high_cv(beta: CampaignSummary) -> None:
    gross = [18 * 210.0, 19 * 205.0, 25 * 200.0]
    _assert_stats(beta, "pytorch-bs1-float16", "gross_energy_j", gross)
    bs1 = next(c for c in beta.configs if c.name == "pytorch-bs1-float16")
    s = bs1.stat("gross_energy_j")
    mean, std, _, _ = _expected(gross)
    assert s.cv == pytest.approx(std / mean, abs=1e-12)
    assert s.high_cv
    reference = 2
    while scipy_stats.t.ppf(0.975, reference - 1) * std / math.sqrt(reference) > 0.05 * mean:
        reference += 1
    assert s.cycles_for_target == reference == 42
    assert [f.code for f in bs1.flags] == ["HIGH_CV"]
    assert "gross_energy_j 15.9 %" in bs1.flags[0].message and "~42 cycles" in bs1.flags[0].message
    bs4 = next(c for c in beta.configs if c.name == "pytorch-bs4-float16")
    assert bs4.flags == () and not bs4.stat("energy_per_output_token_j").high_cv


# --------------------------------------------------------------------------- exclusions


def test_alpha_exclusions_are_counted_per_configuration(alpha: CampaignSummary) -> None:
    counts = {c.name: (c.n_ok, c.excluded) for c in alpha.configs}
    assert counts == {
        "pytorch-bs1-float16": (2, Excluded(invalid=1)),  # old contract version
        "pytorch-bs4-float16": (2, Excluded(failed=1)),
        "pytorch-bs8-float16": (0, Excluded(missing=1)),  # manifest: OOM, no result
        "vllm-float16": (2, Excluded(invalid=1)),  # corrupt file, attributed through spec.json
    }
    assert alpha.excluded == Excluded(failed=1, invalid=2, missing=1)
    assert alpha.n_ok == 6
    assert {c.name: c.run_ids for c in alpha.configs}["pytorch-bs4-float16"] == (
        "pytorch-bs4-float16-c01",
        "pytorch-bs4-float16-c03",
    )


def test_skipped_files_are_reported_by_path(alpha: CampaignSummary, beta: CampaignSummary) -> None:
    reasons = {p.path.parent.name: p.reason for p in alpha.problems}
    assert set(reasons) == {"pytorch-bs1-float16-c03", "vllm-float16-c03"}
    assert "contract version 0.9.0 is older" in reasons["pytorch-bs1-float16-c03"]
    assert "not valid JSON" in reasons["vllm-float16-c03"] and "corrupt" in reasons["vllm-float16-c03"]
    (stray,) = beta.problems
    assert stray.path.parent.name == "stray-run" and "99.0.0 is newer or unknown" in stray.reason
    assert beta.unattributed == Excluded(invalid=1)  # no spec.json beside it
    assert beta.excluded == Excluded(invalid=1)


def test_ok_result_without_metrics_is_invalid(gamma: CampaignSummary) -> None:
    config = next(c for c in gamma.configs if c.name == "grid-bs4-bfloat16")
    assert (config.n_ok, config.excluded) == (2, Excluded(invalid=1))
    assert not gamma.problems


def test_result_that_breaks_the_contract_is_skipped(tmp_path: Path, golden: Path) -> None:
    run = tmp_path / "camp" / "run-1"
    run.mkdir(parents=True)
    data = json.loads((golden / "alpha" / "pytorch-bs1-float16-c01" / "result.json").read_text())
    data["energy"]["gross_energy_kwh"] = 1.0
    (run / "result.json").write_text(json.dumps(data))
    (tmp_path / "camp" / "run-2").mkdir()
    (tmp_path / "camp" / "run-2" / "result.json").write_text("[1, 2]")
    (tmp_path / "camp" / "run-3").mkdir()
    (tmp_path / "camp" / "run-3" / "result.json").write_bytes(b"\xff\xfe{")
    loaded = load_results(tmp_path / "camp")
    assert loaded.records == []
    reasons = sorted(p.reason for p in loaded.problems)
    assert "does not match the result contract: energy.gross_energy_kwh" in reasons[0]
    assert reasons[1] == "expected a JSON object, found list"
    assert "not valid JSON" in reasons[2]
    with pytest.raises(ValueError, match="gross_energy_kwh"):
        read_run_result(run / "result.json")


# --------------------------------------------------------------------------- validity flags


def test_campaign_flags(alpha: CampaignSummary, beta: CampaignSummary, gamma: CampaignSummary) -> None:
    assert [(f.code, f.subjects) for f in alpha.flags] == [("GAP_CAP_REACHED", ("pytorch-bs4-float16-c03",))]
    codes = [f.code for f in beta.flags]
    assert codes == ["BASELINE_DRIFT", "MIXED_HARDWARE", "MIXED_HARDWARE"]
    assert "13.3 %" in beta.flags[0].message and "cycle 1: 60.0 W, cycle 2: 68.0 W" in beta.flags[0].message
    assert "NVIDIA A100-SXM4-80GB (4 runs); NVIDIA H100 80GB HBM3 (2 runs)" in beta.flags[1].message
    assert "550.54.15 (4 runs); 555.42.02 (2 runs)" in beta.flags[2].message
    assert gamma.flags == ()


def test_run_level_flags_are_carried_through(alpha: CampaignSummary) -> None:
    flags = {c.name: c.run_flags for c in alpha.configs}
    assert flags["pytorch-bs4-float16"] == {"THROTTLING": 1}
    assert flags["vllm-float16"] == {"SHORT_WINDOW": 1}
    listed = [(f.scope, f.code) for f in alpha.all_flags()]
    assert ("run", "THROTTLING") in listed and ("run", "SHORT_WINDOW") in listed
    assert listed[0] == ("campaign", "GAP_CAP_REACHED")


# --------------------------------------------------------------------------- group_by


def _gamma_tokens_per_j(bs: int, precision: str, cycle: int) -> float:
    duration = round(24.0 / bs * (1.0 + 0.05 * (cycle - 1)) * (0.9 if precision == "bfloat16" else 1.0), 6)
    power = 150.0 + 40.0 * bs + (10.0 if precision == "bfloat16" else 0.0)
    return TOKENS / (power * duration)


def test_group_by_pools_runs_of_each_group(gamma: CampaignSummary) -> None:
    assert gamma.group_by == ("fp_precision",)
    assert [g.key for g in gamma.groups] == [(("fp_precision", "bfloat16"),), (("fp_precision", "float16"),)]
    bf16 = gamma.groups[0]
    assert bf16.config_names == ("grid-bs1-bfloat16", "grid-bs2-bfloat16", "grid-bs4-bfloat16")
    assert (bf16.n_ok, bf16.excluded) == (6, Excluded(invalid=1))
    values = [_gamma_tokens_per_j(bs, "bfloat16", c) for bs in (1, 2, 4) for c in (1, 2)]
    mean, std, low, high = _expected(values)
    s = bf16.stat("output_tokens_per_j")
    assert s.n == 6
    assert (s.mean, s.std) == pytest.approx((mean, std), abs=1e-12)
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high), abs=1e-9)
    assert [c.group for c in gamma.configs][:3] == [(("fp_precision", "bfloat16"),)] * 3


def test_group_by_numeric_field_sorts_numerically(golden: Path) -> None:
    s = summarize_campaign(golden / "gamma", ["pytorch.batch_size", "fp_precision"])
    assert [g.key for g in s.groups] == [
        (("pytorch.batch_size", bs), ("fp_precision", p)) for bs in (1, 2, 4) for p in ("bfloat16", "float16")
    ]
    assert all(g.n_ok == 2 for g in s.groups)


def test_group_by_backend_and_other_backend_fields(golden: Path) -> None:
    s = summarize_campaign(golden / "alpha", ["backend", "vllm.max_num_seqs"])
    keys = {g.key: g.config_names for g in s.groups}
    assert keys[(("backend", "vllm"), ("vllm.max_num_seqs", 64))] == ("vllm-float16",)
    # bs8 has no valid run: its group value falls back to the backend, other fields unknown
    assert keys[(("backend", "pytorch"), ("vllm.max_num_seqs", None))] == (
        "pytorch-bs1-float16",
        "pytorch-bs4-float16",
        "pytorch-bs8-float16",
    )


def test_resolve_field_uses_backend_defaults() -> None:
    omitted = ExperimentConfig(model_name="m", backend="pytorch")
    assert resolve_field(omitted, "pytorch.batch_size") == 1
    assert resolve_field(omitted, "vllm.max_num_seqs") is None
    assert resolve_field(omitted, "dataset.name") == "ai_energy_score"
    assert resolve_field(omitted, "prompts.input_len") is None  # no prompts section
    assert resolve_field(omitted, "gpus") == "0"
    assert resolve_field(omitted, "decoder") is not None


def test_the_batch_size_alias_reads_each_backends_own_key() -> None:
    pytorch = ExperimentConfig.model_validate(
        {"model_name": "m", "backend": "pytorch", "pytorch": {"batch_size": 8}}
    )
    vllm = ExperimentConfig.model_validate(
        {"model_name": "m", "backend": "vllm", "vllm": {"max_num_seqs": 32}}
    )
    tensorrt = ExperimentConfig.model_validate(
        {"model_name": "m", "backend": "tensorrt", "tensorrt": {"max_batch_size": 16}}
    )
    assert [resolve_field(c, "batch_size") for c in (pytorch, vllm, tensorrt)] == [8, 32, 16]
    assert (
        resolve_field(ExperimentConfig(model_name="m", backend="pytorch"), "batch_size") == 1
    )  # the default


def test_group_by_batch_size_pools_each_backends_batch_key(alpha: CampaignSummary) -> None:
    s = summarize_campaign(alpha.campaign_dir, ["backend,batch_size"])
    assert s.group_by == ("backend", "batch_size")
    assert [(g.key, g.config_names, g.n_ok) for g in s.groups] == [
        ((("backend", "pytorch"), ("batch_size", 1)), ("pytorch-bs1-float16",), 2),
        ((("backend", "pytorch"), ("batch_size", 4)), ("pytorch-bs4-float16",), 2),
        ((("backend", "pytorch"), ("batch_size", None)), ("pytorch-bs8-float16",), 0),  # no valid run
        ((("backend", "vllm"), ("batch_size", 64)), ("vllm-float16",), 2),
    ]
    assert s.groups[0].stat("energy_per_output_token_j").mean == pytest.approx(3.203125)
    assert s.groups[3].stat("energy_per_output_token_j").mean == pytest.approx(1.1046875)


def test_unknown_group_by_field_says_what_to_use() -> None:
    with pytest.raises(UnknownFieldError, match=r"did you mean 'pytorch.batch_size'"):
        validate_fields(["pytorch.batchsize"])
    with pytest.raises(UnknownFieldError, match="not a configuration field"):
        validate_fields(["colour"])
    with pytest.raises(UnknownFieldError, match=r"'batch_sise' .* did you mean 'batch_size'\?"):
        validate_fields(["backend,batch_sise"])
    with pytest.raises(UnknownFieldError, match=r"did you mean 'vllm.max_num_seqs'\?"):
        validate_fields(["max_num_seqs"])  # a key of a backend section, named without its section
    assert validate_fields(["batch_size", "backend,batch_size", "decoder.preset"]) == (
        "batch_size",
        "backend",
        "decoder.preset",
    )
    assert validate_fields(["backend, fp_precision", "backend", "prompts.input_len"]) == (
        "backend",
        "fp_precision",
        "prompts.input_len",
    )
    assert "tensorrt.max_batch_size" in known_fields()


# --------------------------------------------------------------------------- robustness


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(NoResultsError, match="no such file"):
        summarize_campaign(tmp_path / "nope")
    with pytest.raises(NoResultsError, match=r"no result\.json"):
        summarize_campaign(tmp_path)


def test_tree_without_manifest_summarises_the_same(golden_copy: Path) -> None:
    (golden_copy / "alpha" / "manifest.json").unlink()
    s = summarize_campaign(golden_copy / "alpha")
    assert s.excluded == Excluded(failed=1, invalid=2)
    assert [c.name for c in s.configs] == ["pytorch-bs1-float16", "pytorch-bs4-float16", "vllm-float16"]
    assert s.flags == () and s.manifest is None and s.campaign_id == "alpha-0001"


@pytest.mark.parametrize(
    "text", ['["not", "an object"]', '{"runs": "nope"}', "{trunc", '{"runs": [{"x": 1}]}']
)
def test_manifest_of_unknown_shape_is_tolerated(golden_copy: Path, text: str) -> None:
    (golden_copy / "alpha" / "manifest.json").write_text(text)
    s = summarize_campaign(golden_copy / "alpha")
    assert s.n_ok == 6 and s.excluded == Excluded(failed=1, invalid=2)
    assert s.manifest is not None and len(s.manifest.notes) == 1


def test_results_root_with_several_campaigns(golden: Path) -> None:
    s = summarize_campaign(golden)
    assert {c.campaign for c in s.configs} == {"alpha", "beta", "gamma"}
    assert s.n_ok == 6 + 6 + 12
    assert len(s.problems) == 3


def test_summarize_records_is_pure(golden: Path) -> None:
    loaded = load_results(golden / "alpha")
    s = summarize_records(loaded.records, loaded.problems, name="alpha")
    assert s.excluded == Excluded(failed=1, invalid=2) and s.name == "alpha"


def test_walk_is_stable_and_stops_at_run_directories(golden: Path) -> None:
    files = list(find_result_files(golden / "alpha"))
    assert [f.parent.name for f in files] == sorted(f.parent.name for f in files)
    assert len(files) == 9
    assert list(find_result_files(files[0])) == [files[0]]


def test_golden_files_are_what_the_generator_writes(
    tmp_path: Path, golden: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("make_golden", golden.parent / "make_golden_results.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_golden", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.generate(tmp_path / "fresh")
    compare = filecmp.dircmp(golden, tmp_path / "fresh")
    _assert_same(compare)


def _assert_same(compare: filecmp.dircmp[str]) -> None:
    assert not compare.left_only and not compare.right_only, (compare.left_only, compare.right_only)
    _, mismatch, errors = filecmp.cmpfiles(compare.left, compare.right, compare.common_files, shallow=False)
    assert not mismatch and not errors, f"regenerate with tests/data/make_golden_results.py: {mismatch}"
    for sub in compare.subdirs.values():
        _assert_same(sub)


def test_golden_manifest_matches_the_campaign_manifest_model(golden: Path) -> None:
    if importlib.util.find_spec("lem.campaign.manifest") is None:
        pytest.skip("lem.campaign.manifest not present")
    from lem.campaign.manifest import ManifestFile

    ManifestFile.model_validate_json((golden / "alpha" / "manifest.json").read_text())


def test_copied_tree_elsewhere_reads_the_same(golden: Path, tmp_path: Path) -> None:
    shutil.copytree(golden / "beta", tmp_path / "elsewhere" / "beta")
    s = summarize_campaign(tmp_path / "elsewhere" / "beta")
    assert s.n_ok == 6 and [f.code for f in s.flags] == ["BASELINE_DRIFT", "MIXED_HARDWARE", "MIXED_HARDWARE"]


def test_non_finite_values_count_as_missing(golden_copy: Path) -> None:
    path = golden_copy / "alpha" / "pytorch-bs1-float16-c01" / "result.json"
    path.write_text(path.read_text().replace('"gross_energy_j": 4000.0', '"gross_energy_j": NaN'))
    s = summarize_campaign(golden_copy / "alpha")
    bs1 = next(c for c in s.configs if c.name == "pytorch-bs1-float16")
    assert bs1.stat("gross_energy_j").n == 1 and bs1.stat("gross_energy_j").mean == 4200.0
    assert bs1.stat("energy_per_output_token_j").n == 2

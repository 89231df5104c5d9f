"""`lem config validate` and `lem campaign plan` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import lem.cli.config_cmd
from lem import __version__
from lem.cli import main
from lem.cli.campaign_cmd import DefaultRunGroup, format_duration, plan
from lem.cli.context import LemGroup

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "configs" / "examples"
BAD = REPO / "tests" / "data" / "bad_configs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version_and_help(runner: CliRunner) -> None:
    assert runner.invoke(main, ["--version"]).output == f"lem, version {__version__}\n"
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.output and "campaign" in result.output


def test_examples_are_valid(runner: CliRunner) -> None:
    files = [str(EXAMPLES / f"{name}_example.yaml") for name in ("campaign", "pytorch", "tensorrt", "vllm")]
    result = runner.invoke(main, ["config", "validate", *files])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"valid    {EXAMPLES / 'campaign_example.yaml'} (campaign 'backend-comparison': 12 "
        "configuration(s) x "
        "3 cycle(s) = 36 runs, interleaved)"
    )
    assert lines[1] == f"valid    {EXAMPLES / 'pytorch_example.yaml'} (experiment, backend pytorch)"
    assert lines[-1] == "4 files: 4 valid, 0 invalid"


def test_a_directory_argument_validates_every_yaml_inside(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("pytorch_example.yaml", "vllm_example.yaml"):
        (tmp_path / "sub" / name).write_text((EXAMPLES / name).read_text())
    (tmp_path / "notes.txt").write_text("not yaml")
    result = runner.invoke(main, ["config", "validate", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "2 files: 2 valid, 0 invalid"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(main, ["config", "validate", str(empty)]).exit_code == 2


def test_invalid_file_exits_1_with_its_problem(runner: CliRunner) -> None:
    path = BAD / "misspelled_section_key.yaml"
    result = runner.invoke(main, ["config", "validate", str(EXAMPLES / "vllm_example.yaml"), str(path)])
    assert result.exit_code == 1
    assert (
        f"invalid  {path}\n  {path}:4: pytorch.batchsize: unknown key 'batchsize'; did you mean 'batch_size'?"
        in (result.output)
    )
    assert result.output.splitlines()[-1] == "2 files: 1 valid, 1 invalid"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_warnings_print_and_strict_turns_them_into_failures(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "schema_version: '3.0.0'\nmodel_name: m\nbaseline:\n  duration_seconds: 5\n")
    result = runner.invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 0
    assert result.output == (
        f"valid    {path} (experiment, backend pytorch)\n"
        "  warning [SHORT_BASELINE] baseline.duration_seconds: 5 s of idle baseline is below the 30 s the "
        "methodology asks for; the idle power median will be noisy\n"
    )
    strict = runner.invoke(main, ["config", "validate", "--strict", str(path)])
    assert strict.exit_code == 1
    assert strict.output.startswith(f"invalid  {path}")


def test_info_does_not_fail_strict_but_error_advice_always_fails(runner: CliRunner, tmp_path: Path) -> None:
    info = write(tmp_path, "model_name: m\n")  # SCHEMA_VERSION_MISSING is info
    assert runner.invoke(main, ["config", "validate", "--strict", str(info)]).exit_code == 0
    error = tmp_path / "trt.yaml"
    error.write_text(
        "schema_version: '3.0.0'\nmodel_name: m\nbackend: tensorrt\ntensorrt:\n  max_input_len: 100\n"
    )
    result = runner.invoke(main, ["config", "validate", str(error)])
    assert result.exit_code == 1
    assert "error [TRT_INPUT_LIMIT] tensorrt.max_input_len" in result.output


def test_json_output(runner: CliRunner, tmp_path: Path) -> None:
    bad = BAD / "duplicate_key.yaml"
    result = runner.invoke(
        main, ["config", "validate", "--json", str(EXAMPLES / "pytorch_example.yaml"), str(bad)]
    )
    assert result.exit_code == 1
    good, invalid = json.loads(result.output)
    assert good == {
        "file": str(EXAMPLES / "pytorch_example.yaml"),
        "kind": "experiment",
        "valid": True,
        "summary": "experiment, backend pytorch",
        "problems": [],
        "warnings": [],
    }
    assert invalid["valid"] is False
    assert invalid["problems"] == [
        {
            "file": str(bad),
            "line": 4,
            "key": "model_name",
            "message": "duplicate key 'model_name' (first given on line 2); keep one",
            "column": None,  # given for problems in the YAML text itself
        }
    ]


@pytest.mark.parametrize("args", [[], ["no/such/file.yaml"], ["--bogus", "x.yaml"]])
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    assert runner.invoke(main, ["config", "validate", *args]).exit_code == 2


def test_an_unexpected_error_is_a_message_not_a_traceback(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def explode(path: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lem.cli.config_cmd, "check_file", explode)
    monkeypatch.delenv("LEM_DEBUG", raising=False)
    path = write(tmp_path, "model_name: m\n")
    result = runner.invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert (
        f"  {path}: internal error: RuntimeError: boom (rerun with --debug for the traceback)"
        in result.output
    )
    assert "Traceback" not in result.output


def test_root_group_turns_unexpected_exceptions_into_messages(runner: CliRunner) -> None:
    @click.group(cls=LemGroup)
    def root() -> None:
        pass

    @root.command()
    def fail() -> None:
        raise KeyError("missing")

    result = runner.invoke(root, ["fail"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unexpected error: KeyError: 'missing'\n")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_campaign_group_sends_a_file_to_run() -> None:
    group = DefaultRunGroup("campaign")
    group.add_command(plan)
    runner = CliRunner()
    missing = runner.invoke(group, ["some.yaml"])
    assert missing.exit_code == 1
    assert "running campaigns is not available in this build" in missing.output

    seen: list[tuple[str, bool]] = []

    @group.command("run")
    @click.argument("file")
    @click.option("--resume", is_flag=True)
    def run(file: str, resume: bool) -> None:
        seen.append((file, resume))

    assert runner.invoke(group, ["c.yaml", "--resume"]).exit_code == 0
    assert runner.invoke(group, ["--resume", "d.yaml"]).exit_code == 0
    assert runner.invoke(group, ["run", "e.yaml"]).exit_code == 0
    assert seen == [("c.yaml", True), ("d.yaml", True), ("e.yaml", False)]
    assert "plan" in runner.invoke(group, ["--help"]).output


def test_plan_text(runner: CliRunner) -> None:
    result = runner.invoke(main, ["campaign", "plan", str(EXAMPLES / "campaign_example.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0] == "campaign 'backend-comparison': 12 configuration(s) x 3 cycle(s) = 36 runs, interleaved"
    )
    assert lines[1].split() == ["cycle", "pos", "id", "backend", "gap", "before", "run", "axis", "values"]
    first, thirteenth = lines[2].split(), lines[14].split()
    assert first[:2] + first[3:] == ["1", "1", "pytorch", "0", "s", "pytorch-bs1-float16-c01", "batch_size=1",
                                     "fp_precision=float16"]  # fmt: skip
    assert thirteenth[:2] + thirteenth[3:] == ["2", "13", "pytorch", "5", "min", "pytorch-bs1-float16-c02",
                                               "batch_size=1", "fp_precision=float16"]  # fmt: skip
    assert len(lines) == 2 + 36 + 1
    assert lines[-1] == "total gap time: 43 min (2580 s over 35 gaps)"


def test_plan_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["campaign", "plan", "--json", str(EXAMPLES / "campaign_example.yaml")])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["campaign_name"], data["configurations"], data["total_gap_s"]) == (
        "backend-comparison",
        12,
        2580,
    )
    assert len(data["runs"]) == 36
    assert data["runs"][35] == {
        "run_id": "vllm-bs8-bfloat16-c03",
        "cycle": 3,
        "position": 36,
        "config_id": data["runs"][11]["config_id"],
        "name": "vllm-bs8-bfloat16",
        "backend": "vllm",
        "axis_values": {"batch_size": 8, "fp_precision": "bfloat16"},
        "gap_before_s": 60.0,
        "gap_kind": "config",
    }


def test_plan_of_a_bad_campaign_exits_1_with_located_problems(runner: CliRunner) -> None:
    path = BAD / "campaign_invalid_combination.yaml"
    result = runner.invoke(main, ["campaign", "plan", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7: fp_precision: fp_precision float32 is not supported" in result.output
    assert "Traceback" not in result.output


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.5, 119, 300, 3600, 7740)] == [
        "0 s", "59.5 s", "119 s", "5 min", "1 h 00 min", "2 h 09 min",
    ]  # fmt: skip


def test_text_output_stops_after_50_problems_and_json_keeps_them_all(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "model_name: m\n" + "".join(f"key_{i:03d}: 1\n" for i in range(120))
    )  # no schema_version: info
    result = runner.invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 + 50 + 1
    assert lines[1].startswith(
        f"  {path}:2: key_000: unknown key 'key_000'; valid keys here: schema_version, "
    )
    assert lines[50].startswith(f"  {path}:51: key_049: unknown key 'key_049'")
    assert lines[51] == "  … and 70 more (--json lists them all)"
    as_json = json.loads(runner.invoke(main, ["config", "validate", "--json", str(path)]).output)
    problems = as_json[0]["problems"]
    assert len(problems) == 120
    assert problems[119] == {
        "file": str(path),
        "line": 121,
        "key": "key_119",
        "message": "unknown key 'key_119'",  # past HINT_LIMIT (100): no "did you mean" lookup
        "column": None,
    }
    assert problems[99]["message"].startswith("unknown key 'key_099'; valid keys here: ")


def test_validate_refuses_a_missing_local_model_as_run_would(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "e.yaml"
    path.write_text(
        "schema_version: '3.0.0'\nmodel_name: ../models/tiny\nprompts:\n  type: file\n  path: prompts.jsonl\n"
    )
    result = runner.invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1
    fix = "fix the path (relative paths are read from the directory of the file that gives them)"
    assert result.output.splitlines()[1:] == [
        f"  {path}:2: model_name: {tmp_path / 'models' / 'tiny'} does not exist: {fix}",
        f"  {path}:5: prompts.path: {tmp_path / 'cfg' / 'prompts.jsonl'} does not exist: {fix}",
    ]
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "cfg" / "prompts.jsonl").mkdir()  # a directory is not a prompts file
    result = runner.invoke(main, ["config", "validate", str(path)])
    assert result.output.splitlines()[1:] == [
        f"  {path}:5: prompts.path: {tmp_path / 'cfg' / 'prompts.jsonl'} is a directory "
        f"(prompts.path names a .jsonl file of prompts): {fix}",
    ]
    (tmp_path / "cfg" / "prompts.jsonl").rmdir()
    (tmp_path / "cfg" / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    assert runner.invoke(main, ["config", "validate", str(path)]).exit_code == 0


def test_overridden_settings_are_warned_by_validate_and_plan(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "campaign_name: c\nmodel: org/m\ndataset: ai_energy_score\nbase:\n  warmup:\n    max_prompts: 20\n"
        "grid:\n  backends: [pytorch]\nexecution:\n  cycles: 3\n  warmup_prompts: 5\n"
    )
    expected = (
        "warning [OVERRIDDEN] base.warmup.max_prompts: base.warmup.max_prompts (20) has no effect: "
        "execution.warmup_prompts (5) overrides it; set it in one place"
    )
    validate = runner.invoke(main, ["config", "validate", str(path)])
    assert validate.exit_code == 0
    assert f"  {expected}" in validate.output.splitlines()
    planned = runner.invoke(main, ["campaign", "plan", str(path)])
    assert planned.exit_code == 0
    assert planned.output.count(expected) == 1

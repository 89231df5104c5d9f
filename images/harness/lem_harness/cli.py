"""``python -m lem_harness run --spec SPEC.json --out DIR`` (argparse: the harness has no click).

``python -m lem_harness probe --needs JSON`` answers the host's preflight (``lem_harness.probe``):
the problems, as JSON, on stdout; exit 0 whatever it finds, 2 when the request is invalid.

Exit codes: 0 the run succeeded; 1 the run failed (``result.json`` still written, with
``status: failed`` and the error); 2 bad arguments or an unreadable/invalid spec (a
message on stderr, no traceback, no result).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from lem_harness import __version__
from lem_harness.contract import CONTRACT_VERSION, RunSpec, contract_major
from lem_harness.interrupts import InterruptGate
from lem_harness.runner import run

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SpecError(Exception):
    """The spec file cannot be used; the message says why and what to do."""


def _validation_lines(error: ValidationError) -> list[str]:
    return [
        f"  {'.'.join(str(p) for p in item['loc']) or '(top level)'}: {item['msg']}"
        for item in error.errors()
    ]


def load_spec(path: Path) -> RunSpec:
    """The validated spec at ``path``, or ``SpecError`` naming the file, the line or key, and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{path}: cannot read the spec ({e.strerror or e})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from e
    if isinstance(data, dict):
        version = str(data.get("schema_version", CONTRACT_VERSION))
        if contract_major(version) != contract_major(CONTRACT_VERSION):
            raise SpecError(
                f"{path}: spec schema_version {version} is not readable by this harness (contract "
                f"{CONTRACT_VERSION}); rebuild the image or upgrade lem so that both sides match"
            )
    try:
        return RunSpec.model_validate(data)
    except ValidationError as e:
        lines = "\n".join(_validation_lines(e))
        raise SpecError(f"{path}: invalid run spec:\n{lines}") from e


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lem_harness", description="LLenergyMeasure harness")
    parser.add_argument("--version", action="version", version=f"lem_harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one experiment spec and write result.json + timeline.csv")
    run.add_argument("--spec", type=Path, required=True, help="the run spec (JSON, contract.RunSpec)")
    run.add_argument("--out", type=Path, required=True, help="directory for result.json and timeline.csv")
    probe = commands.add_parser("probe", help="check what runs need inside this environment (JSON out)")
    probe.add_argument("--needs", required=True, help="JSON list of {backend, model, dataset}")
    return parser


def _probe(needs_json: str) -> int:
    from lem_harness.probe import run_probe

    try:
        print(run_probe(needs_json, os.environ))
    except ValidationError as e:
        print("lem_harness: invalid probe request:\n" + "\n".join(_validation_lines(e)), file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _sigterm_handler(gate: InterruptGate) -> Callable[[int, FrameType | None], None]:
    """SIGTERM → the gate: ``RunInterrupted`` while the run executes, only noted while it closes
    (so an ``interrupted`` result is written whatever the phase); a second SIGTERM changes nothing."""

    def handler(signum: int, frame: FrameType | None) -> None:
        gate.signal(signal.Signals(signum).name)

    return handler


def _run(spec_path: Path, out_dir: Path) -> int:
    try:
        spec = load_spec(spec_path)
    except SpecError as e:
        print(f"lem_harness: {e}", file=sys.stderr)
        return EXIT_USAGE
    gate = InterruptGate()
    previous = signal.signal(signal.SIGTERM, _sigterm_handler(gate))
    try:
        result = run(spec, out_dir, gate=gate, cpu_clock=time.process_time)
    except OSError as e:  # disk full, read-only or not permitted: say where, no traceback
        print(
            f"lem_harness: cannot write {e.filename or out_dir}: {e.strerror or e} "
            "(free space or fix the permissions of the results directory, then resume)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.status != "ok":
        error = result.error
        print(
            f"lem_harness: run {spec.run_id} failed: {error.type if error else '?'}: "
            f"{error.message if error else ''}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="lem_harness %(asctime)s %(message)s", stream=sys.stderr)
    if args.command == "run":
        return _run(args.spec, args.out)
    if args.command == "probe":
        return _probe(args.needs)
    return EXIT_USAGE

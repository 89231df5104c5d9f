"""A stand-in for ``python -m lem_harness run --spec S --out D`` in the local-runtime fault test.

It takes the run's measuring lock, logs ``start``, and writes an ``ok`` result at once — unless
``$FAULT_CONTROL/hold-<run_id>`` exists: then it removes that file, writes
``$FAULT_CONTROL/held-<run_id>`` (its pid) and waits. On SIGTERM it writes a failed result
(``RunInterrupted``) and exits 1, like the real harness — or, when the hold file said
``ignore-term``, logs ``sigterm`` and keeps waiting (an engine that hangs while closing).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lem_harness.contract import RESULT_FILE, ErrorInfo, RunSpec
from lem_harness.fileio import atomic_write_json
from tests.faults import events
from tests.support.fake_runtime import Play, fake_result


def main(argv: list[str]) -> int:
    if argv[:1] == ["-c"]:  # the runtime's probe: python -c "import lem_harness"
        return 0
    args = dict(zip(argv[3::2], argv[4::2], strict=False))  # -m lem_harness run --spec S --out D
    spec = RunSpec.model_validate_json(Path(args["--spec"]).read_text())
    out, log, control = Path(args["--out"]), os.environ["FAULT_EVENTS"], Path(os.environ["FAULT_CONTROL"])
    events.begin_measuring(log, out, spec.run_id)
    hold = control / f"hold-{spec.run_id}"
    if hold.exists():
        mode = hold.read_text().strip()
        hold.unlink()
        _on_sigterm(spec, out, log, ignore=mode == "ignore-term")
        events.publish(control / f"held-{spec.run_id}", str(os.getpid()))
        threading.Event().wait()
    atomic_write_json(out / RESULT_FILE, fake_result(spec, Play()))
    events.log(log, "end", spec.run_id, os.getpid(), "ok")
    return 0


def _on_sigterm(spec: RunSpec, out: Path, log: str, *, ignore: bool) -> None:
    def handler(signum: int, frame: object) -> None:
        events.log(log, "sigterm", spec.run_id, os.getpid())
        if ignore:
            return
        result = fake_result(spec, Play(result="failed")).model_copy(
            update={"error": ErrorInfo(type="RunInterrupted", message="received SIGTERM")}
        )
        atomic_write_json(out / RESULT_FILE, result)
        events.log(log, "end", spec.run_id, os.getpid(), "interrupted")
        os._exit(1)

    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``lem campaign run`` with the local runtime whose "python" is the fault suite's stand-in harness.

    python -m tests.faults.local_campaign FAKE_PYTHON CAMPAIGN.yaml [lem campaign run options…]

The real command, options, signal handling and ``LocalRuntime`` (own process group,
parent-death signal, attempt records); only the harness process is ``fake_harness.py``.
"""

from __future__ import annotations

import sys

from lem.cli.campaign_cmd import campaign
from lem.cli.run_cmd import RunDeps
from lem.runtime.local import LocalRuntime


def main(argv: list[str]) -> None:
    python, rest = argv[0], argv[1:]
    deps = RunDeps(runtime_factory=lambda name: LocalRuntime(python, term_grace_s=120.0))
    # --skip-preflight: the stand-in harness answers runs only, not preflight's `probe`.
    argv = ["run", *rest, "--runtime", "local", "--quiet", "--skip-preflight"]
    campaign.main(argv, obj=deps, prog_name="lem campaign")


if __name__ == "__main__":
    main(sys.argv[1:])

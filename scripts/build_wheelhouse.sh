#!/usr/bin/env bash
# Collect the wheels an image needs so that it can be built without internet (idempotent).
#
#   scripts/build_wheelhouse.sh BACKEND [FLAVOUR]       BACKEND: pytorch | vllm | tensorrt
#                                                        FLAVOUR: gpu (default) | cpu (pytorch, vllm)
#
# Output: wheelhouse/<backend>/      (production GPU image: what its base image lacks)
#         wheelhouse/<backend>-cpu/  (CPU test flavour: torch CPU + transformers + ... on Debian;
#                                     vllm cpu is delegated to scripts/build_vllm_wheelhouse.sh)
# Each wheelhouse holds the pinned requirements of images/<backend>/requirements[-cpu].txt with
# their dependencies, setuptools + wheel (to build the harness offline) and, in harness/, a wheel of
# the harness.
# Then `make images OFFLINE=1 [FLAVOUR=cpu]` builds with `pip install --no-index`.
#
# Isolated GPU hosts: run this on a connected machine with the same CPU architecture, then copy
# wheelhouse/ next to the repository on the isolated host:
#     scripts/build_wheelhouse.sh pytorch && scripts/build_wheelhouse.sh vllm && scripts/build_wheelhouse.sh tensorrt
# When the image's Python differs from this machine's, set LEM_WHEEL_PYTHON (e.g. 3.12): wheels are then
# fetched for that version and manylinux x86_64 only (binary wheels only). For the CPU torch wheel on a
# machine without a local wheel mirror, add the PyTorch CPU index: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# Re-running skips the download while the requirements are unchanged (stamp file); the harness wheel is
# always rebuilt.
set -euo pipefail

BACKEND="${1:-}"
FLAVOUR="${2:-gpu}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

say() { printf 'wheelhouse: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

case "$BACKEND" in pytorch|vllm|tensorrt) ;; *) die "usage: $0 pytorch|vllm|tensorrt [gpu|cpu]";; esac
case "$FLAVOUR" in
    gpu) NAME="$BACKEND"; REQS="$ROOT/images/$BACKEND/requirements.txt" ;;
    cpu) [ "$BACKEND" = vllm ] && exec "$ROOT/scripts/build_vllm_wheelhouse.sh"  # its own recipe (+ a .deb)
         [ "$BACKEND" = pytorch ] || die "cpu flavours exist for pytorch and vllm only"
         NAME="$BACKEND-cpu"; REQS="$ROOT/images/$BACKEND/requirements-cpu.txt"
         NODEPS="$ROOT/images/$BACKEND/requirements-cpu-nodeps.txt" ;;  # the demo model, --no-deps
    *) die "flavour must be gpu or cpu, not '$FLAVOUR'" ;;
esac
[ -f "$REQS" ] || die "missing $REQS"
OUT="$ROOT/wheelhouse/$NAME"
STAMP="$OUT/.requirements.sha256"
HOST_PY="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
TARGET_PY="${LEM_WHEEL_PYTHON:-$HOST_PY}"

cross_flags=()
if [ "$TARGET_PY" != "$HOST_PY" ]; then
    cross_flags=(--only-binary=:all: --python-version "$TARGET_PY" --implementation cp
                 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
                 --platform manylinux2014_x86_64 --platform any)
fi

NODEPS="${NODEPS:-}"
want="$( { cat "$REQS" ${NODEPS:+"$NODEPS"}; echo "python=$TARGET_PY"; } | sha256sum | cut -d' ' -f1)"
mkdir -p "$OUT"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "$NAME: requirements unchanged; skipping download"
else
    say "$NAME: downloading $(grep -cvE '^\s*(#|$)' "$REQS") pinned requirements for Python $TARGET_PY into $OUT"
    "$PY" -m pip download --quiet --dest "$OUT" "${cross_flags[@]}" -r "$REQS" "setuptools>=68" wheel \
        || die "pip download failed (is PyPI reachable? see the header of this script)"
    if [ -n "$NODEPS" ]; then
        "$PY" -m pip download --quiet --no-deps --dest "$OUT" "${cross_flags[@]}" -r "$NODEPS" \
            || die "pip download of $NODEPS failed"
    fi
    echo "$want" >"$STAMP"
fi
# The harness wheel goes to harness/ (for installs outside Docker, e.g. the local runtime on an
# isolated host); image builds leave that folder out and build the harness from source.
rm -f "$OUT"/lem_harness-*.whl "$OUT"/harness/lem_harness-*.whl
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/harness" "$ROOT/images/harness" \
    || die "could not build the harness wheel"
say "$NAME: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"

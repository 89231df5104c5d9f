#!/usr/bin/env bash
# Bootstrap a minimal Debian base image without any registry (idempotent).
#
#   scripts/bootstrap_base_image.sh [IMAGE]        default IMAGE: lem/debian-bookworm:base
#
# No container registry is reachable from the development and CI machines, so the base of the
# CPU test images is built here: debootstrap (minbase + python3, venv, pip) into a temporary
# directory, then `docker import`. Skips everything when IMAGE already exists.
# Env: LEM_DEBIAN_MIRROR (default: the first plain-HTTP Debian mirror apt uses here,
# else http://deb.debian.org/debian), LEM_DEBIAN_SUITE (default bookworm).
set -euo pipefail

IMAGE="${1:-${LEM_BASE_IMAGE:-lem/debian-bookworm:base}}"
SUITE="${LEM_DEBIAN_SUITE:-bookworm}"
INCLUDE="python3,python3-venv,python3-pip,ca-certificates"

say() { printf 'bootstrap-base: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

host_mirror() {
    local found
    found="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | grep -E '^(URIs:|deb )' | grep -oE 'http://[^ ]+/debian/?( |$)' \
        | grep -v -- '-security' | head -n 1 | tr -d ' ' || true)"
    printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

main() {
    docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/ci/docker_engine.sh first"
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        say "$IMAGE already exists; nothing to do"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing: apt-get install debootstrap (or run scripts/ci/docker_engine.sh)"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    local mirror root
    mirror="${LEM_DEBIAN_MIRROR:-$(host_mirror)}"
    root="$(mktemp -d /tmp/lem-rootfs.XXXXXX)"
    ROOTFS="$root"
    trap 'rm -rf "${ROOTFS:-}" "${ROOTFS:-}.log"' EXIT
    say "debootstrap $SUITE from $mirror into $root"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 \
        || { tail -n 20 "$root.log" >&2; die "debootstrap failed (mirror $mirror; set LEM_DEBIAN_MIRROR)"; }
    rm -f "$root.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    say "importing as $IMAGE"
    tar -C "$root" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        - "$IMAGE" >/dev/null
    say "done: $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

main "$@"

#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (idempotent).
#
#   scripts/ci/docker_engine.sh          install docker.io + debootstrap if missing, start dockerd, wait
#
# Used by CI (.ci/run), `make docker-engine` and the integration fixtures (LEM_REQUIRE_DOCKER=1).
# Needs root (or sudo) to install packages and start the daemon. Does nothing when `docker info`
# already works. Exits non-zero with a message saying what to do when the engine cannot be started.
set -euo pipefail

WAIT_S="${LEM_DOCKER_WAIT_S:-60}"
LOG="${LEM_DOCKERD_LOG:-/var/log/lem-dockerd.log}"
LOCK="${LEM_DOCKER_LOCK:-/tmp/lem-docker-engine.lock}"

say() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run '$*' (run this script as root or install sudo)"; fi
}

engine_answers() { docker info >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "dockerd missing and no apt-get: install Docker Engine (https://docs.docker.com/engine/install/)"
    say "installing ${missing[*]} (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null \
        || die "apt-get update failed: check the machine's Debian mirror"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        "${missing[@]}" iptables ca-certificates >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

start_daemon() {
    if pgrep -x dockerd >/dev/null 2>&1; then
        say "dockerd is running but not answering yet; waiting"
        return 0
    fi
    say "starting dockerd in the background (log: $LOG)"
    as_root bash -c "nohup dockerd >'$LOG' 2>&1 &"
}

wait_for_engine() {
    local deadline=$((SECONDS + WAIT_S))
    until engine_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "last lines of $LOG:"; tail -n 20 "$LOG" >&2 2>/dev/null || true
            die "Docker engine did not answer within ${WAIT_S}s. Start it by hand ('sudo dockerd &' or
       'sudo systemctl start docker'); if it runs but refuses you, add yourself to the docker group
       ('sudo usermod -aG docker \$USER', then log in again)."
        fi
        sleep 1
    done
}

main() {
    if engine_answers; then say "engine answers ($(docker info --format '{{.ServerVersion}}'))"; return 0; fi
    exec 9>"$LOCK"
    flock 9
    if engine_answers; then say "engine answers"; return 0; fi
    install_packages
    start_daemon
    wait_for_engine
    say "engine answers ($(docker info --format '{{.ServerVersion}}'))"
}

main "$@"

#!/usr/bin/env bash
# Make sure a single-node Slurm cluster answers on this machine (idempotent).
#
#   scripts/ci/slurm_cluster.sh      install slurm-wlm + munge (Debian), configure, start, wait for the node
#
# Used by CI (.ci/run) and the `slurm` integration tests (LEM_REQUIRE_SLURM=1). Needs root.
# The cluster: slurmctld + slurmd on this host, one partition `lem`, ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, SelectType=select/cons_tres (CR_CPU), cgroup.conf with CgroupPlugin=cgroup/v1,
# no accounting (sacct answers nothing: lem then follows jobs through squeue/scontrol and the jobs'
# own exit files), and two GPUs in gres.conf backed by character devices made with mknod (a GRES
# count without device files leaves the node INVAL). Does nothing when the node already answers idle.
set -euo pipefail

WAIT_S="${LEM_SLURM_WAIT_S:-60}"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
GPU_DEV=/dev/lem-slurm-gpu

say() { printf 'slurm-cluster: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts slurmctld, slurmd and munged)"

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }
cluster_ready() { case "$(node_state)" in idle|mixed|allocated|idle~|completing) return 0 ;; *) return 1 ;; esac; }

install_packages() {
    command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
        && command -v munged >/dev/null 2>&1 && return 0
    say "installing slurm-wlm and munge (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null \
        || die "apt-get update failed: check the machine's Debian mirror"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "munged does not answer (see /var/log/munge/munged.log)"
}

gpu_devices() {
    for i in 0 1; do
        [ -c "$GPU_DEV$i" ] || { rm -f "$GPU_DEV$i"; mknod "$GPU_DEV$i" c 195 "$i"; }
    done
}

write_config() {
    local host node
    host="$(hostname -s)"
    node="$(slurmd -C | head -1)"  # NodeName=… CPUs=… Boards=… RealMemory=… as slurmd sees this host
    mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    cat > "$CONF_DIR/slurm.conf" <<EOF
# written by scripts/ci/slurm_cluster.sh (lem CI): one node, two fake GPUs
ClusterName=lem
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
InactiveLimit=0
KillWait=5
OverTimeLimit=0
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
$node Gres=gpu:2 State=UNKNOWN
PartitionName=lem Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    cat > "$CONF_DIR/gres.conf" <<EOF
Name=gpu File=${GPU_DEV}[0-1]
EOF
    cat > "$CONF_DIR/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupAutomount=no
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=no
EOF
}

start_daemons() {
    local host
    host="$(hostname -s)"
    if ! scontrol ping 2>/dev/null | grep -q 'is UP'; then
        say "starting slurmctld"
        slurmctld -i || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    fi
    if [ ! -s /run/slurmd.pid ] || ! kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null; then
        say "starting slurmd"
        slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
    fi
    for _ in $(seq 1 $((WAIT_S * 2))); do
        cluster_ready && return 0
        case "$(node_state)" in
            down*|drain*|inval*|unknown*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    sinfo -N -l >&2 || true
    tail -20 "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmctld.log" >&2 || true
    die "the node is not idle after ${WAIT_S}s"
}

if command -v sinfo >/dev/null 2>&1 && cluster_ready; then
    say "cluster up: $(sinfo -h -N -o '%N %T %G')"
    exit 0
fi
install_packages
start_munge
gpu_devices
write_config
start_daemons
say "cluster up: $(sinfo -h -N -o '%N %T %G')"

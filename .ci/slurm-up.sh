#!/usr/bin/env bash
# A one-node Slurm on this machine for the Slurm tests (tests/test_slurm.py): munged,
# slurmctld and slurmd on localhost, root as SlurmUser, no cgroups (proctrack/linuxproc,
# task/none), select/cons_tres. Installs Debian's slurm-wlm and munge when missing.
# Idempotent: a running cluster that answers `sinfo` is left as it is.
# Usage: .ci/slurm-up.sh    (as root; about a minute the first time)
set -euo pipefail
# The daemons started below outlive this script: they must not inherit the caller's
# descriptors (under `flock LOCK .ci/run`, munged kept LOCK held for as long as it ran).
# 255 is the descriptor bash reads this script from.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  if [ "$n" -gt 2 ] && [ "$n" -ne 255 ]; then eval "exec $n>&-"; fi
done

node_up() { sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; }
if pgrep -x slurmctld >/dev/null && pgrep -x slurmd >/dev/null && node_up; then
  echo "slurm: already up ($(sinfo -h -o '%P %D %T' | head -1))"
  exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: one key, a socket the Slurm daemons and clients share
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=bench
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# a cancelled or preempted job: its processes get SIGTERM, then SIGKILL this many s later
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
for _ in $(seq 10); do pgrep -x slurmd >/dev/null || break; sleep 1; done  # one shutting down
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in $(seq 60); do
  if pgrep -x slurmd >/dev/null && node_up; then
    echo "slurm: up ($(sinfo -h -o '%P %D %T %c' | head -1))"
    exit 0
  fi
  scontrol update nodename="${host}" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm: did not come up; see /var/log/slurm/" >&2
sinfo >&2 || true
tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1

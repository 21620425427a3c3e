#!/bin/bash
# Baseline for `npm run bench`: the simplest hand-written way to run the same Slurm cluster
# slurmkit builds (1 head + N workers, each node its own net/uts/mount/pid namespaces on one
# bridge, the same slurm.conf, one munged on the head), so slurmkit's `up` time can be
# compared with "what it costs anyway". No checks, no state, no labels beyond what is needed
# to tear down.
#
#   bench/baseline.sh [WORKERS]     (root; default 64 workers)
#
# Prints one JSON line on stdout as soon as every worker is idle in sinfo:
#   {"workers":64,"upMs":1234}
# then, with BASELINE_ARRAY=N, runs an N-task array of `true` and prints {"arrayJobs":N,"arrayMs":...},
# then tears everything down and prints {"downMs":...}. Progress goes to stderr.
# Everything lives in a fresh folder under /var/tmp, on bridge skbasebr in 10.214.0.0/22
# (away from slurmkit's 10.213.0.0/16); an EXIT trap removes it all, also on failure.
set -euo pipefail

N=${1:-64}
BR=skbasebr                    # bridge; host veth ends are skbase<i>
NET=10.214.0                   # 10.214.0.0/22: gateway .1, head .2, workers from .11 on
# Sets ADDR to worker $1's address, without a subshell (a fork per worker would slow the floor down).
worker_addr() { local x=$((10 + $1)); ADDR="10.214.$((x / 256)).$((x % 256))"; }
TIMEOUT_S=${BASELINE_TIMEOUT_S:-120}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

now_ms() { date +%s%3N; }
T0=$(now_ms)
log() { echo "baseline: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 2; }
[ "$N" -ge 1 ] && [ "$N" -le 1000 ] || { log "WORKERS must be 1..1000"; exit 2; }
if ip link show "$BR" &>/dev/null || [ -n "$(ip -4 route show "$NET.0/22")" ]; then
  log "$BR or $NET.0/22 already in use (another baseline running, or a leftover: ip link del $BR)"
  exit 4
fi

W=$(mktemp -d /var/tmp/skbase.XXXXXX)
PIDS=()        # one `unshare` per node (--kill-child: if it dies, so does the node)

teardown() {
  local t=$(now_ms) p c
  # Kill each node's PID 1 (the child of its unshare): the kernel then kills the whole node,
  # and unshare exits once all of it is gone. An unshare that has not forked yet is killed itself.
  for p in "${PIDS[@]}"; do
    c=; read -r c _ < "/proc/$p/task/$p/children" 2>/dev/null || true
    kill -KILL "${c:-$p}" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.01; done; done
  # A namespace's veth goes away when the kernel gets round to it; do not wait for that.
  for i in $(seq 0 "$N"); do echo "link del skbase$i"; done | ip -force -batch - 2>/dev/null || true
  ip link del "$BR" 2>/dev/null || true
  rm -rf "$W"
  echo "{\"downMs\":$(( $(now_ms) - t ))}"
}
trap 'rc=$?; trap - EXIT; teardown; exit $rc' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- files: the same layout slurmkit gives a cluster folder -------------------------------
mkdir -p "$W"/etc/slurm "$W"/lib/slurmctld "$W"/log "$W"/run/munge
install -d -m 0700 "$W"/munge
head -c 1024 /dev/urandom > "$W"/munge/munge.key
chmod 0400 "$W"/munge/munge.key

{
  echo "127.0.0.1 localhost"
  echo "$NET.2 head"
  for i in $(seq 1 "$N"); do worker_addr "$i"; echo "$ADDR c$i"; done
} > "$W"/etc/hosts

# slurm.conf: the structure of test/golden/lab.slurm.conf, one NodeName line per worker.
{
  cat <<CONF
ClusterName=skbase
SlurmctldHost=head($NET.2)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=30
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
MaxArraySize=10001
MaxJobCount=100000
MailProg=/bin/true
CONF
  for i in $(seq 1 "$N"); do
    worker_addr "$i"
    echo "NodeName=c$i NodeAddr=$ADDR CPUs=1 RealMemory=1024 State=UNKNOWN"
  done
  echo "PartitionName=all Nodes=c[1-$N] Default=YES MaxTime=UNLIMITED State=UP"
} > "$W"/etc/slurm/slurm.conf

# --- network -------------------------------------------------------------------------------
ip link add "$BR" type bridge
ip addr add "$NET.1/22" dev "$BR"
ip link set "$BR" up
# Docker's FORWARD policy DROP would cut bridged traffic when br_netfilter is loaded.
RULE=(FORWARD -i "$BR" -o "$BR" -j ACCEPT)
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]; then
  iptables -w -I "${RULE[@]}"
  trap 'rc=$?; trap - EXIT; iptables -w -D "${RULE[@]}" 2>/dev/null || true; teardown; exit $rc' EXIT
fi

# --- nodes ---------------------------------------------------------------------------------
# What runs as PID 1 of each node: wait until the host has plugged in eth0 (it writes to the
# node's FIFO), then address, hostname, mounts, daemons. $1 hostname, $2 address, $3 folder.
NODE_INIT='
set -eu
read -r _ < "$3/go-$1"
ip link set lo up
ip addr add "$2/22" dev eth0
ip link set eth0 up
hostname "$1"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir /run/munge
mount --bind "$3/run/munge" /run/munge
mount --bind "$3/etc/hosts" /etc/hosts
mount --bind "$3/etc/slurm" /etc/slurm
mount --bind "$3/lib" /var/lib/slurm
mount --bind "$3/log" /var/log/slurm
if [ "$1" = head ]; then
  mount --bind "$3/munge" /etc/munge
  munged --seed-file=/etc/munge/munge.seed --log-file=/var/log/slurm/munged.log --pid-file=/run/munged.pid
  slurmctld
else
  mkdir -p "/var/lib/slurm/slurmd/$1"
  slurmd
fi
exec sleep infinity
'

HOSTS=(head) ADDRS=("$NET.2")
for i in $(seq 1 "$N"); do worker_addr "$i"; HOSTS+=("c$i") ADDRS+=("$ADDR"); done

# Start every node at once; each blocks on its FIFO until its network is in place.
for i in "${!HOSTS[@]}"; do
  mkfifo "$W/go-${HOSTS[i]}"
  unshare --net --uts --mount --pid --fork --kill-child --mount-proc \
    bash -c "$NODE_INIT" node "${HOSTS[i]}" "${ADDRS[i]}" "$W" </dev/null >>"$W/log/console-${HOSTS[i]}.log" 2>&1 &
  PIDS+=($!)
  disown $!  # killed on purpose at teardown: no "Killed" job notices
done

# unshare enters its new network namespace itself; once it has, the node's veth end can move
# in. All veths are made by one `ip -batch`.
HOST_NETNS=$(readlink /proc/self/ns/net)
for i in "${!PIDS[@]}"; do
  while [ "$(readlink /proc/"${PIDS[i]}"/ns/net)" = "$HOST_NETNS" ]; do sleep 0.005; done
  echo "link add skbase$i type veth peer name eth0 netns ${PIDS[i]}"
  echo "link set skbase$i master $BR up"
done | ip -batch -
for h in "${HOSTS[@]}"; do echo go > "$W/go-$h"; done
log "$((N + 1)) nodes started in $(( $(now_ms) - T0 )) ms; waiting for $N idle workers"

# --- wait until every worker is idle (and responding) --------------------------------------
deadline=$(( $(now_ms) + TIMEOUT_S * 1000 ))
while :; do
  idle=$(nsenter -t "${PIDS[0]}" --net --mount --uts sinfo -h -N -o '%N %T' 2>/dev/null | grep -ci ' idle$' || true)
  [ "$idle" -eq "$N" ] && break
  if [ "$(now_ms)" -gt "$deadline" ]; then
    log "timed out with $idle/$N idle; slurmctld log:"; tail -5 "$W/log/slurmctld.log" >&2 || true
    exit 7
  fi
  sleep 0.05
done
echo "{\"workers\":$N,\"upMs\":$(( $(now_ms) - T0 ))}"

# --- optionally, short jobs: BASELINE_ARRAY=N runs an N-task array of `true` (the reference for
# the throughput bench: the same Slurm with its default settings and no accounting) -------------
if [ "${BASELINE_ARRAY:-0}" -gt 0 ]; then
  in_head() { nsenter -t "${PIDS[0]}" --net --mount --uts "$@"; }
  t=$(now_ms)
  id=$(in_head sbatch --parsable --array=1-"$BASELINE_ARRAY" -o /dev/null --wrap true)
  while [ -n "$(in_head squeue -h -r -j "$id" -o %i 2>/dev/null | head -1)" ]; do sleep 0.25; done
  echo "{\"arrayJobs\":$BASELINE_ARRAY,\"arrayMs\":$(( $(now_ms) - t ))}"
fi
# The EXIT trap tears down and prints {"downMs":...}.

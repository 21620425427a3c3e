#!/bin/bash
# Installs everything slurmkit needs on a Debian/Ubuntu machine, as root, and builds it.
# Safe to run again: apt and npm skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (the local provider creates namespaces and bridges)" >&2
  exit 1
fi

# Real Slurm and munge from Debian; util-linux for unshare/nsenter, iproute2 for bridges and veths,
# iptables for the per-cluster FORWARD rule where Docker's br_netfilter filters bridged traffic.
# MariaDB and slurmdbd for accounting, slurmrestd for the REST API, Open MPI with PMIx for MPI jobs.
# gcc: mpicc calls it, and Open MPI's packages bring only gcc-12.
# docker.io for provider: docker (no engine is started here: a user starts theirs, tests their own),
# mmdebstrap to build the node image from Debian's packages (no registry needed); docker-registry
# only for the tests of a swarm whose spec names a registry (they run their own, on their own network).
# chromium: the browser the dashboard's tests drive (through playwright-core; no browser download).
# bubblewrap, libslurm-dev: sandboxed partitions (the SPANK plugin is compiled with gcc against spank.h);
# linux-perf: performance counters inside them (perf stat).
# jupyter-notebook, python3-ipykernel, jupyter-nbconvert, python3-cloudpickle: the login node's Jupyter and `run(fn)`.
PACKAGES=(slurm-wlm slurm-client slurmdbd slurmrestd munge mariadb-server openmpi-bin libopenmpi-dev gcc
  iproute2 iptables util-linux procps psmisc ca-certificates docker.io mmdebstrap docker-registry chromium
  bubblewrap libslurm-dev linux-perf jupyter-notebook python3-ipykernel jupyter-nbconvert python3-nbformat python3-cloudpickle)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

# Debian's slurm packages enable their services on systemd machines; slurmkit runs its own
# daemons per cluster, so the system-wide ones are not needed (and are left as they are).

# The mount point of every cluster's shared data folder (nodes mount over it; nothing is written here).
mkdir -p /shared

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup.sh: slurmkit needs Node.js 20 or newer; this machine has $(node --version)" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "setup.sh: ready. Try: ./bin/slurmkit doctor"

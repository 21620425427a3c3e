#!/bin/bash
# MPI hello world on the lab cluster: build with mpicc, run 8 ranks on c1..c8 with srun.
# Run as root from anywhere; the cluster must be up (slurmkit up -t lab).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
slurmkit="${SLURMKIT:-$here/../../bin/slurmkit}"
cluster="${1:-lab}"

# /shared is the same folder on every node (unlike /tmp, which is private per node), so the
# program built on the head is the one every worker runs.
"$slurmkit" exec "$cluster" -- mkdir -p /shared/mpi
"$slurmkit" exec "$cluster" -- bash -c 'cat > /shared/mpi/hello.c' < "$here/hello.c"
"$slurmkit" exec "$cluster" -- mpicc -O2 -Wall -o /shared/mpi/hello /shared/mpi/hello.c

# --mpi=pmix: Slurm starts a PMIx server per node that Open MPI wires up through (the cluster's
#   MpiDefault is none, so say it here or export SLURM_MPI_TYPE=pmix).
# (The cluster's mpi.conf sets PMIxCollFence=ring: see examples/mpi/README.md.)
# --kill-on-bad-exit=1: if one rank dies, end the others instead of leaving them waiting.
time "$slurmkit" exec "$cluster" -- srun --mpi=pmix --kill-on-bad-exit=1 -N8 /shared/mpi/hello

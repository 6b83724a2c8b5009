#!/bin/bash
# slurm_array.sh — split a suite over a Slurm job array, one shard per task,
# then merge. Each task writes its own run folder; merge joins them.
#
#   sbatch --array=1-8 scripts/slurm_array.sh full
#   # when all tasks are done:
#   build/latbench merge results/full-merged results/full-shard-*
#
#SBATCH --job-name=latbench
#SBATCH --cpus-per-task=2
#SBATCH --exclusive
#SBATCH --time=12:00:00
set -eu
SUITE=${1:-full}
N=${SLURM_ARRAY_TASK_COUNT:?run me with sbatch --array=1-N}
I=${SLURM_ARRAY_TASK_ID:?}
export OMP_PLACES=cores OMP_PROC_BIND=close
make -s build/latbench
# --resume: a requeued task continues where it stopped
build/latbench sweep "$SUITE" --shard "$I/$N" --resume --out "results/$SUITE-shard-$I"

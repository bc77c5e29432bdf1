#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU (mmaction2's interface):
#   [GPUS=16] [GPUS_PER_NODE=8] tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
# Env: GPUS (tasks in all, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options, split on spaces), MASTER_PORT (random), PYTHON.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [tools/train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
PYTHON=${PYTHON:-python}
read -r -a EXTRA_SRUN <<< "${SRUN_ARGS:-}"
# every task reads it (mmengine's slurm launcher); random to let jobs share a node
export MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
set -x
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    "${EXTRA_SRUN[@]}" \
    "$PYTHON" -u "$(dirname "$0")/train.py" "$CONFIG" --launcher slurm "${@:4}"

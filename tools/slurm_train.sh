#!/usr/bin/env bash
# Training on Slurm with srun (one task per GPU). Always passes --resume: a requeued
# or restarted job continues from the newest complete checkpoint in WORK_DIR.
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py ARGS...]
# Env: GPUS=4 GPUS_PER_NODE=4 CPUS_PER_TASK=5 SRUN_ARGS="" PORT=<free port> DRY_RUN=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
[[ $# -ge 4 ]] || die "usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
slurm_env "$PARTITION" "$JOB_NAME"
slurm_exec "${SRUN[@]}" "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
  --launcher=slurm --resume "$@"

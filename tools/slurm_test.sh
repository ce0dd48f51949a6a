#!/usr/bin/env bash
# Testing on Slurm with srun.
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py ARGS...]
# Env: GPUS=4 GPUS_PER_NODE=4 CPUS_PER_TASK=5 SRUN_ARGS="" PORT=<free port> DRY_RUN=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
[[ $# -ge 4 ]] || die "usage: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
slurm_env "$PARTITION" "$JOB_NAME"
slurm_exec "${SRUN[@]}" "$PYTHON" -u "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" \
  --launcher=slurm "$@"

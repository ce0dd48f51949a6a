#!/usr/bin/env bash
# Distributed testing with torchrun (NCCL on GPUs, gloo on CPU).
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py ARGS...]
# Env: NNODES NODE_RANK MASTER_ADDR PORT (as dist_train.sh), DRY_RUN=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
[[ $# -ge 3 ]] || die "usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS...]"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
[[ $GPUS =~ ^[0-9]+$ ]] || die "GPUS must be a number, got '$GPUS'"
[[ -f $CONFIG ]] || die "config $CONFIG does not exist"
[[ -f $CHECKPOINT ]] || die "checkpoint $CHECKPOINT does not exist"
launch_env
read -r -a TORCHRUN <<<"$(torchrun_cmd)"
CMD=("${TORCHRUN[@]}" --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR"
     --master_port="$PORT" --nproc_per_node="$GPUS"
     "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@")
if [[ -n ${DRY_RUN:-} ]]; then
  quoted "${CMD[@]}"
  exit 0
fi
launch_preflight "$GPUS"
exec_ranks "${CMD[@]}"

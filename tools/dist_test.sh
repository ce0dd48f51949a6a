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
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
if [[ -z ${PORT:-} ]]; then
  [[ $NNODES == 1 ]] || die "NNODES=$NNODES: set the same PORT on every node (e.g. PORT=29531)"
  PORT=$("$PYTHON" -m segkit.launch free-port)
fi
read -r -a TORCHRUN <<<"$(torchrun_cmd)"
CMD=("${TORCHRUN[@]}" --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR"
     --master_port="$PORT" --nproc_per_node="$GPUS"
     "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@")
if [[ -n ${DRY_RUN:-} ]]; then
  quoted "${CMD[@]}"
  exit 0
fi
"$PYTHON" -m segkit.launch check-gpus "$GPUS" >/dev/null || exit 2  # before anything starts
if [[ $NODE_RANK == 0 ]] && ! "$PYTHON" -m segkit.launch port-free "$PORT"; then
  die "PORT=$PORT is already in use on this machine (another job?): unset PORT to pick a free one, or choose another"
fi
exec "${CMD[@]}"

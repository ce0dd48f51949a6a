#!/usr/bin/env bash
# Distributed training with torchrun: NCCL on GPUs, gloo on CPU (same code path).
#   tools/dist_train.sh CONFIG GPUS [train.py ARGS...]
# GPUS=1 on one node: a plain single process (tools/train.py, no torchrun, no DDP).
# Env (like mmseg's): NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=<free port>
#   PORT unset on one node: a free port is picked, so two jobs never collide;
#   several nodes need the same PORT everywhere. DRY_RUN=1 prints the command only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
[[ $# -ge 2 ]] || die "usage: tools/dist_train.sh CONFIG GPUS [ARGS...]"
CONFIG=$1
GPUS=$2
shift 2
[[ $GPUS =~ ^[0-9]+$ ]] || die "GPUS must be a number, got '$GPUS'"
[[ -f $CONFIG ]] || die "config $CONFIG does not exist"
if [[ $GPUS == 1 && ${NNODES:-1} == 1 ]]; then
  # one process: no torchrun, no DDP (nothing to synchronise; no port needed)
  CMD=("$PYTHON" "$ROOT/tools/train.py" "$CONFIG" "$@")
  [[ -z ${DRY_RUN:-} ]] || { quoted "${CMD[@]}"; exit 0; }
  "$PYTHON" -m segkit.engine.launch check-gpus 1 >/dev/null || exit 2
  exec "${CMD[@]}"
fi
launch_env
read -r -a TORCHRUN <<<"$(torchrun_cmd)"
CMD=("${TORCHRUN[@]}" --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR"
     --master_port="$PORT" --nproc_per_node="$GPUS"
     "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@")
if [[ -n ${DRY_RUN:-} ]]; then
  quoted "${CMD[@]}"
  exit 0
fi
launch_preflight "$GPUS"
exec_ranks "${CMD[@]}"

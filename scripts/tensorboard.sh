#!/usr/bin/env bash
# TensorBoard on a work dir (its one run, <work_dir>/tensorboard) or on all of work_dirs/
# (one run per experiment, overlaid).
#   scripts/tensorboard.sh [LOGDIR=work_dirs] [PORT=6006, or a free one if taken]
# Env: TB_HOST=127.0.0.1 (listen address; 0.0.0.0 to serve the network).
# On a remote server: ssh -L PORT:localhost:PORT server, then open http://localhost:PORT
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tools/_common.sh"
LOGDIR=${1:-work_dirs}
PORT=${2:-6006}
TB_HOST=${TB_HOST:-127.0.0.1}
[[ -d $LOGDIR ]] || die "log dir $LOGDIR does not exist (train something first, e.g. make demo)"
if ! "$PYTHON" -m segkit.engine.launch port-free "$PORT"; then
  taken=$PORT
  PORT=$("$PYTHON" -m segkit.engine.launch free-port)
  echo "port $taken is taken: using $PORT"
fi
echo "TensorBoard on $LOGDIR: http://$TB_HOST:$PORT   (remote: ssh -L $PORT:localhost:$PORT $(hostname))"
exec "$PYTHON" -m tensorboard.main --logdir "$LOGDIR" --port "$PORT" --host "$TB_HOST" \
  --reload_interval 15

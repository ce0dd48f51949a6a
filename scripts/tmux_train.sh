#!/usr/bin/env bash
# Train in a detached tmux session, with TensorBoard beside it.
#   scripts/tmux_train.sh CONFIG GPUS [train.py ARGS...]
# Session: named after the config stem (SESSION=name to choose); if it exists this
# refuses and prints how to attach. Window "train" runs tools/dist_train.sh, its output
# also in <work_dir>/console.log; window "tensorboard" serves <work_dir> on a free port
# (TB_PORT=N to choose). Env of dist_train.sh (PORT, NNODES, ...) passes through.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tools/_common.sh"
[[ $# -ge 2 ]] || die "usage: scripts/tmux_train.sh CONFIG GPUS [ARGS...]"
command -v tmux >/dev/null || die "tmux is not installed (Debian/Ubuntu: apt install tmux; conda install -c conda-forge tmux)"
CONFIG=$1
GPUS=$2
shift 2
[[ -f $CONFIG ]] || die "config $CONFIG does not exist"
STEM=$(basename "$CONFIG" .py)
SESSION=${SESSION:-${STEM//[.:]/_}}
# the work dir tools/train.py will use: --work-dir if given, else work_dirs/<stem>
WORK_DIR=work_dirs/$STEM
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --work-dir) WORK_DIR=${args[i+1]:-$WORK_DIR} ;;
    --work-dir=*) WORK_DIR=${args[i]#--work-dir=} ;;
  esac
done
if tmux has-session -t "=$SESSION" 2>/dev/null; then
  die "tmux session '$SESSION' already exists (is this config training?): tmux attach -t $SESSION ; or pick another name: SESSION=${SESSION}-2 scripts/tmux_train.sh ..."
fi
mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
LOG=$WORK_DIR/console.log
TB_PORT=${TB_PORT:-$("$PYTHON" -m segkit.engine.launch free-port)}
TRAIN="cd $(printf '%q' "$ROOT") && set -o pipefail && $(quoted "$ROOT/tools/dist_train.sh" "$CONFIG" "$GPUS" "$@") 2>&1 | tee -a $(printf '%q' "$LOG"); echo \"[tmux_train] training exited with \$?\" | tee -a $(printf '%q' "$LOG")"
TB="$(quoted "$ROOT/scripts/tensorboard.sh" "$WORK_DIR" "$TB_PORT")"
tmux new-session -d -s "$SESSION" -n train -c "$ROOT" "bash -c $(printf '%q' "$TRAIN")"
tmux set-option -t "$SESSION" remain-on-exit on >/dev/null   # keep the last output visible
tmux new-window -d -t "$SESSION" -n tensorboard -c "$ROOT" "bash -c $(printf '%q' "$TB")"
cat <<MSG
started tmux session '$SESSION'
  attach:       tmux attach -t $SESSION      (windows: 0 train, 1 tensorboard; detach: Ctrl-b d)
  console log:  $LOG
  TensorBoard:  http://127.0.0.1:$TB_PORT   (remote: ssh -L $TB_PORT:localhost:$TB_PORT $(hostname))
  stop:         tmux kill-session -t $SESSION
MSG

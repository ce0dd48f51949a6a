#!/usr/bin/env bash
# Train in a detached tmux session, with TensorBoard beside it.
#   scripts/tmux_train.sh CONFIG GPUS [train.py ARGS...]
#   scripts/tmux_train.sh CONFIG GPUS --resume    after a crash: restarts training in
#                                                 the surviving session (TensorBoard stays)
# Every variable you set (CUDA_VISIBLE_DEVICES, PORT, NNODES, OMP_NUM_THREADS, ...)
# reaches training, also when a tmux server already runs (its own environment would
# win otherwise): it is written to <work_dir>/.tmux_train.env (mode 600) and sourced.
# Session: short and unique per work dir (SESSION=name to choose); window "train" runs
# tools/dist_train.sh (output also in <work_dir>/console.log), window "tensorboard"
# serves <work_dir> on one port per work dir (<work_dir>/tensorboard.port; TB_PORT=N).
# Exit code: 0 when the session (or the restart) started, 2 when it did not.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tools/_common.sh"

# ---- inside the train window: run training, end the pane with why it stopped
if [[ ${1:-} == __window ]]; then
  LOG=$2 HINT=$3
  shift 3
  # the caller's environment, written by the launch below
  # shellcheck disable=SC1091
  source "$(dirname "$LOG")/.tmux_train.env"
  cd "$ROOT"
  export PYTHONUNBUFFERED=1  # lines as they come, through tee
  start=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  set +e
  "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc == 0 ]]; then
    echo "[tmux_train] training finished" | tee -a "$LOG"
  else
    # the one-line reason: segkit's "error: ..." line, else Python's last exception line
    out=$(tail -c +"$((start + 1))" "$LOG")
    reason=$(grep -E '^error: ' <<<"$out" | tail -n 1 || true)
    [[ -n $reason ]] || reason=$(grep -E '^[A-Za-z_.]*(Error|Exception|Interrupt)\b' <<<"$out" | tail -n 1 || true)
    if [[ -z $reason && $rc -gt 128 ]]; then
      reason="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))) (out of memory? someone's kill?)"
    fi
    [[ -n $reason ]] || reason="exit code $rc"
    printf '[tmux_train] training stopped (exit %s): %s\nresume with: %s\n' \
      "$rc" "${reason#error: }" "$HINT" | tee -a "$LOG"
  fi
  exit "$rc"
fi

[[ $# -ge 2 ]] || die "usage: scripts/tmux_train.sh CONFIG GPUS [ARGS...]"
command -v tmux >/dev/null || die "tmux is not installed (Debian/Ubuntu: apt install tmux; conda install -c conda-forge tmux)"
CONFIG=$1
GPUS=$2
shift 2
[[ $GPUS =~ ^[1-9][0-9]*$ ]] || die "GPUS must be a positive number, got '$GPUS' (usage: scripts/tmux_train.sh CONFIG GPUS [ARGS...])"
[[ -f $CONFIG ]] || die "config $CONFIG does not exist"
STEM=$(basename "$CONFIG" .py)
# the work dir tools/train.py will use: --work-dir if given, else work_dirs/<stem>
WORK_DIR=work_dirs/$STEM
RESUME=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --work-dir) WORK_DIR=${args[i+1]:-$WORK_DIR} ;;
    --work-dir=*) WORK_DIR=${args[i]#--work-dir=} ;;
    --resume | --resume=*) RESUME=1 ;;
  esac
done
mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
# short and unique per work dir: the stem's first 16 characters + a hash of the path
HASH=$(printf '%s' "$WORK_DIR" | cksum | cut -c1-4)
SESSION=${SESSION:-$(printf '%s' "${STEM:0:16}" | tr -c 'A-Za-z0-9_-' _)-$HASH}
LOG=$WORK_DIR/console.log

# what the pane tells you after a crash: this command, with --resume
resume_args=()
for a in "$@"; do [[ $a == --resume* ]] || resume_args+=("$a"); done
HINT=$(quoted scripts/tmux_train.sh "$CONFIG" "$GPUS" ${resume_args[@]+"${resume_args[@]}"} --resume)

# the caller's environment, for the window to source (tmux's global one would win)
(umask 077
 for v in $(compgen -e); do
   case $v in TMUX | TMUX_PANE | PWD | OLDPWD | SHLVL | _ | BASH_FUNC_*) continue ;; esac
   printf 'export %s=%q\n' "$v" "${!v}"
 done) > "$WORK_DIR/.tmux_train.env"
TRAIN=$(quoted "$ROOT/scripts/tmux_train.sh" __window "$LOG" "$HINT" "$ROOT/tools/dist_train.sh" "$CONFIG" "$GPUS" "$@")

tb_port() {  # one port per work dir: the stored one while free, else a new one
  local f=$WORK_DIR/tensorboard.port port=${TB_PORT:-}
  [[ -n $port ]] || { [[ -f $f ]] && port=$(<"$f"); } || true
  if [[ -z $port ]] || ! "$PYTHON" -m segkit.engine.launch port-free "$port"; then
    port=$("$PYTHON" -m segkit.engine.launch free-port)
  fi
  echo "$port" > "$f"
  echo "$port"
}
pane_dead() { [[ $(tmux display-message -p -t "=$SESSION:$1" '#{pane_dead}' 2>/dev/null) == 1 ]]; }

if tmux has-session -t "=$SESSION" 2>/dev/null; then
  if [[ $RESUME == 0 ]]; then
    die "tmux session '$SESSION' already exists (is this config training?): tmux attach -t $SESSION ; after a crash: $HINT"
  fi
  pane_dead train || die "training still runs in tmux session '$SESSION' (tmux attach -t $SESSION); stop it first (Ctrl-c in its window) to resume"
  tmux respawn-window -t "=$SESSION:train" -c "$ROOT" "$TRAIN"
  if pane_dead tensorboard; then
    tmux respawn-window -t "=$SESSION:tensorboard" -c "$ROOT" "$(quoted "$ROOT/scripts/tensorboard.sh" "$WORK_DIR" "$(tb_port)")"
  fi
  echo "resumed training in tmux session '$SESSION' (tmux attach -t $SESSION); TensorBoard: http://127.0.0.1:$(<"$WORK_DIR/tensorboard.port")"
  exit 0
fi

PORT_TB=$(tb_port)
TB=$(quoted "$ROOT/scripts/tensorboard.sh" "$WORK_DIR" "$PORT_TB")
# one tmux command sequence: the panes stay (remain-on-exit) even if training dies at once
tmux new-session -d -s "$SESSION" -n train -c "$ROOT" "$TRAIN" \; \
  set-option -w -t "=$SESSION:train" remain-on-exit on \; \
  set-option -t "=$SESSION:train" status-left-length 40 \; \
  new-window -d -t "=$SESSION:" -n tensorboard -c "$ROOT" "$TB" \; \
  set-option -w -t "=$SESSION:tensorboard" remain-on-exit on >/dev/null
tmux has-session -t "=$SESSION" 2>/dev/null || die "tmux session '$SESSION' did not start"
cat <<MSG
started tmux session '$SESSION'
  attach:       tmux attach -t $SESSION      (windows: 0 train, 1 tensorboard; detach: Ctrl-b d)
  console log:  $LOG
  TensorBoard:  http://127.0.0.1:$PORT_TB   (remote: ssh -L $PORT_TB:localhost:$PORT_TB $(hostname))
  after a crash: $HINT
  stop:         tmux kill-session -t $SESSION
MSG

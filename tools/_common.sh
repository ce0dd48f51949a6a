# Sourced by the launchers, install.sh and the Makefile: repo root, the one answer to
# "which Python", shell-quoting for DRY_RUN.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# the environment: the active virtualenv / conda env, else the repo's .venv
if [[ -n ${VIRTUAL_ENV:-} ]]; then ENV_DIR=$VIRTUAL_ENV; ENV_KIND="active virtualenv"
elif [[ -n ${CONDA_PREFIX:-} ]]; then ENV_DIR=$CONDA_PREFIX; ENV_KIND="active conda env"
else ENV_DIR=$ROOT/.venv; ENV_KIND="repo .venv"
fi
# its Python (PYTHON=... overrides; python3 on PATH before the first install)
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x $ENV_DIR/bin/python ]]; then PYTHON=$ENV_DIR/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

die() { echo "error: $*" >&2; exit 2; }
quoted() { local out=() a; for a in "$@"; do out+=("$(printf '%q' "$a")"); done; echo "${out[*]}"; }
# torchrun from the same environment as $PYTHON
torchrun_cmd() {
  local bin; bin=$(dirname "$PYTHON")/torchrun
  if [[ -x $bin ]]; then echo "$bin"; else echo "$PYTHON -m torch.distributed.run"; fi
}

# torchrun's rendezvous settings, like mmseg's launchers; PORT unset on one node: a
# free port (two jobs on one server never collide); several nodes must share PORT
launch_env() {
  NNODES=${NNODES:-1}
  NODE_RANK=${NODE_RANK:-0}
  MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
  if [[ -z ${PORT:-} ]]; then
    [[ $NNODES == 1 ]] || die "NNODES=$NNODES: set the same PORT on every node (e.g. PORT=29531)"
    PORT=$("$PYTHON" -m segkit.engine.launch free-port)
  fi
}
# checks before anything starts: GPUs requested vs visible, the port free on the master
launch_preflight() {
  "$PYTHON" -m segkit.engine.launch check-gpus "$1" >/dev/null || exit 2
  if [[ $NODE_RANK == 0 ]] && ! "$PYTHON" -m segkit.engine.launch port-free "$PORT"; then
    die "PORT=$PORT is already in use on this machine (another job?): unset PORT to pick a free one, or choose another"
  fi
}
# runs the torchrun command "$@" (from torchrun_cmd) after one --preflight-only of
# its tool; a refusal's one line stays last with exit 2 (no ChildFailedError wall)
exec_ranks() { exec "$PYTHON" -m segkit.engine.launch torchrun "$@"; }
# srun's settings, like mmseg's slurm scripts: sets SRUN (srun and its options) for
# PARTITION JOB_NAME; mmengine falls back to port 29500 for every job, so each job
# gets its own MASTER_PORT
slurm_env() {
  local gpus=${GPUS:-4} srun_extra
  local per_node=${GPUS_PER_NODE:-$(( gpus < 4 ? gpus : 4 ))}
  read -r -a srun_extra <<<"${SRUN_ARGS:-}"
  SRUN=(srun -p "$1" --job-name="$2" --gres=gpu:"$per_node" --ntasks="$gpus"
        --ntasks-per-node="$per_node" --cpus-per-task="${CPUS_PER_TASK:-5}"
        --kill-on-bad-exit=1 ${srun_extra[@]+"${srun_extra[@]}"})
  export MASTER_PORT=${PORT:-$("$PYTHON" -m segkit.engine.launch free-port)}
}
# runs the command; DRY_RUN=1 prints it (with MASTER_PORT) instead
slurm_exec() {
  if [[ -n ${DRY_RUN:-} ]]; then
    echo "MASTER_PORT=$MASTER_PORT $(quoted "$@")"
    exit 0
  fi
  exec "$@"
}

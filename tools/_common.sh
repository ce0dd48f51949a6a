# Sourced by the launchers: repo root, the Python to use, shell-quoting for DRY_RUN.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# the active virtualenv / conda env, else the repo's .venv, else python3 on PATH
if [[ -n ${PYTHON:-} ]]; then :
elif [[ -n ${VIRTUAL_ENV:-} ]]; then PYTHON=$VIRTUAL_ENV/bin/python
elif [[ -n ${CONDA_PREFIX:-} ]]; then PYTHON=$CONDA_PREFIX/bin/python
elif [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python
else PYTHON=python3
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

die() { echo "error: $*" >&2; exit 2; }
quoted() { local out=() a; for a in "$@"; do out+=("$(printf '%q' "$a")"); done; echo "${out[*]}"; }
# torchrun from the same environment as $PYTHON
torchrun_cmd() {
  local bin; bin=$(dirname "$PYTHON")/torchrun
  if [[ -x $bin ]]; then echo "$bin"; else echo "$PYTHON -m torch.distributed.run"; fi
}

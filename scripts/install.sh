#!/usr/bin/env bash
# Install segkit's stack. Idempotent: with nothing changed a second run takes seconds.
#
#   scripts/install.sh [--dev]        (make install / make demo / make test call it)
#
# Where: the active virtualenv ($VIRTUAL_ENV) or conda env ($CONDA_PREFIX), else ./.venv.
# What, in order: setuptools>=77.0.3,<81 (mmcv's setup.py and mmengine import
# pkg_resources); torch (kept if 2.6 <= torch < 2.14, else torch==2.13.0); mmcv 2.1.0
# built from source with its ops (CUDA kernels when a GPU and a matching nvcc exist);
# requirements.txt; torchvision only where it imports; segkit itself (editable).
#
# Environment:
#   SEGKIT_WHEELS=DIR  extra wheel folder passed to pip as --find-links (CI: ../shared/wheels,
#                      a prebuilt CPU mmcv for Python 3.11 + torch 2.13.0); optional. A
#                      folder made by `make wheelhouse` (it holds segkit-wheelhouse.txt)
#                      installs offline: pip --no-index, the lock's packages --no-deps,
#                      mmcv from its wheel or built from its sdist there, torch kept
#   MMCV_REBUILD=1     rebuild mmcv even if the installed one works
#   MMCV_CPU_ONLY=1    on a GPU machine, build mmcv's CPU ops only (minutes, not tens of
#                      minutes); also what happens without a matching nvcc. Training then
#                      takes the PyTorch path for the ops without kernels (make doctor)
#   PYTHON=python3.11  interpreter for a new .venv
#   MAX_JOBS=N         parallel compile jobs (default: number of cores)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (use --dev)" >&2; exit 2 ;;
  esac
done

BASE_PYTHON=${PYTHON:-}   # PYTHON: the interpreter for a new .venv
source "$ROOT/tools/_common.sh"   # ENV_DIR, ENV_KIND (the one "which Python")
say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

# the pinned versions: segkit/facts.py (the one source; it imports nothing)
eval "$(python3 "$ROOT/segkit/facts.py")"

# ---------------------------------------------------------------- environment
if [[ $ENV_KIND == "repo .venv" && ! -x $ENV_DIR/bin/python ]]; then
  base=$BASE_PYTHON
  if [[ -z $base ]]; then
    for cand in python3.11 python3.12 python3.10 python3; do
      if command -v "$cand" >/dev/null 2>&1; then base=$cand; break; fi
    done
  fi
  [[ -n $base ]] || die "no python3 found: install Python 3.11 (or set PYTHON=/path/to/python3.11)"
  say "creating $ENV_DIR with $($base --version 2>&1)"
  "$base" -m venv "$ENV_DIR" || die "'$base -m venv' failed: install the venv module (Debian: apt install python3-venv)"
fi
PY=$ENV_DIR/bin/python
[[ -x $PY ]] || die "$PY not found: is $ENV_DIR a Python environment?"
"$PY" - "$PYTHON_MIN" "$PYTHON_MAX" <<'EOF' || die "segkit needs Python $PYTHON_MIN-$PYTHON_MAX: create an env with Python 3.11 (PYTHON=python3.11 make install)"
import sys; v = lambda s: tuple(map(int, s.split('.')))
sys.exit(0 if v(sys.argv[1]) <= sys.version_info[:2] <= v(sys.argv[2]) else 1)
EOF

# ------------------------------------------------------------- up to date?
# The stamp records what was installed (inputs' hash, and 1 if the dev tools too).
STAMP=$ENV_DIR/.segkit-install-stamp
INPUTS=$({ cat requirements.txt requirements-dev.txt pyproject.toml scripts/install.sh \
            segkit/facts.py; echo "$ROOT"; } | sha256sum | cut -d' ' -f1)
if [[ -z ${MMCV_REBUILD:-} && -f $STAMP ]] && read -r s_inputs s_dev <"$STAMP" \
   && [[ $s_inputs == "$INPUTS" && ${s_dev:-0} -ge $DEV ]] \
   && "$PY" -c 'import segkit, mmcv._ext, mmseg, mmdet' >/dev/null 2>&1; then
  say "up to date ($ENV_KIND: $ENV_DIR)"
  exit 0
fi
say "installing into the $ENV_KIND: $ENV_DIR"

PIP=("$PY" -m pip --disable-pip-version-check)
FIND_LINKS=()
OFFLINE=()   # a wheelhouse (make wheelhouse): no index at all
if [[ -n ${SEGKIT_WHEELS:-} ]]; then
  [[ -d $SEGKIT_WHEELS ]] || die "SEGKIT_WHEELS=$SEGKIT_WHEELS is not a folder: unset it or point it at a wheel folder"
  SEGKIT_WHEELS=$(cd "$SEGKIT_WHEELS" && pwd)
  FIND_LINKS=(--find-links "$SEGKIT_WHEELS")
  LOCK=$SEGKIT_WHEELS/segkit-wheelhouse.txt
  if [[ -f $LOCK ]]; then
    OFFLINE=(--no-index --no-deps)
    say "offline: installing from the wheelhouse $SEGKIT_WHEELS ($(sed -n 's/^# target: //p' "$LOCK"))"
  fi
fi
# pip, quiet, minus one machine-specific warning about configured index folders
pipq() {
  local out rc=0
  out=$("${PIP[@]}" install -q ${OFFLINE[@]+"${OFFLINE[@]}"} "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | grep -v -e "^WARNING: Location '.*' is ignored" -e '^$' >&2 || true
  return $rc
}

# ----------------------------------------------------------- build tooling
if [[ ${#OFFLINE[@]} -gt 0 ]]; then
  # the whole lock first (build tools and the pinned stack); --no-deps: what the target
  # already has (torch, numpy, opencv, ...) was left out of it on purpose
  pipq "${FIND_LINKS[@]}" -r <(grep -v '^#' "$LOCK") \
    || die "pip could not install the wheelhouse's packages: was it made for this Python ($("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])'))? (make wheelhouse PY_VERSION=... PLATFORM=...)"
else
  pipq "setuptools$SETUPTOOLS" wheel ninja psutil numpy || die "could not install setuptools/ninja (network to PyPI?)"
fi

# ------------------------------------------------------------------- torch
torch_ok() {
  "$PY" - "$TORCH_MIN" "$TORCH_MAX" <<'EOF' 2>/dev/null
import sys, re
import torch
v = tuple(int(x) for x in re.match(r'(\d+)\.(\d+)', torch.__version__).groups())
lo, hi = (tuple(int(x) for x in a.split('.')) for a in sys.argv[1:3])
print(torch.__version__)
sys.exit(0 if lo <= v < hi else 1)
EOF
}
if tv=$(torch_ok); then
  say "keeping torch $tv (supported: $TORCH_MIN <= torch < $TORCH_MAX)"
else
  [[ ${#OFFLINE[@]} -eq 0 ]] || die "offline install needs a torch ($TORCH_MIN <= torch < $TORCH_MAX) in this env${tv:+ (found $tv)}: the wheelhouse leaves torch out"
  if [[ -n $tv ]]; then say "torch $tv is outside $TORCH_MIN <= torch < $TORCH_MAX: installing torch==$TORCH_DEFAULT"
  else say "installing torch==$TORCH_DEFAULT"; fi
  pipq "torch==$TORCH_DEFAULT" || die "pip could not install torch==$TORCH_DEFAULT"
  tv=$(torch_ok) || die "torch does not import after installing it"
fi
CONSTRAINTS=$(mktemp); trap 'rm -f "$CONSTRAINTS"' EXIT
{ echo "torch==$tv"; grep -E '^[A-Za-z0-9_.-]+==' requirements.txt | sed 's/ *#.*//'; } >"$CONSTRAINTS"

# --------------------------------------------------------------- mmcv build
# GPU + nvcc whose CUDA major matches torch's -> CUDA kernels for the visible GPUs.
read -r TORCH_CUDA GPU_ARCHS < <("$PY" - <<'EOF'
import torch
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                for i in range(torch.cuda.device_count())}) if torch.cuda.is_available() else []
print(torch.version.cuda or 'none', ';'.join(archs) or 'none')
EOF
)
# torch's extension builder takes $CUDA_HOME/bin/nvcc first, then nvcc on PATH
NVCC=$(command -v nvcc || true)
if [[ -n ${CUDA_HOME:-} && -x $CUDA_HOME/bin/nvcc ]]; then NVCC=$CUDA_HOME/bin/nvcc; fi
WITH_CUDA=0
if [[ $GPU_ARCHS != none ]]; then
  nvcc_ver=$([[ -n $NVCC ]] && "$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' || true)
  if [[ -n $nvcc_ver && ${nvcc_ver%%.*} == "${TORCH_CUDA%%.*}" ]]; then
    WITH_CUDA=1
    export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
  fi
  if [[ $WITH_CUDA == 1 && -n ${MMCV_CPU_ONLY:-} ]]; then
    WITH_CUDA=0
    say "GPU present, MMCV_CPU_ONLY=1: mmcv gets its CPU ops only (minutes instead of tens of minutes)"
  elif [[ $WITH_CUDA == 0 ]]; then
    if [[ -z $nvcc_ver ]]; then why="no nvcc found (CUDA_HOME or PATH)"
    else why="nvcc $nvcc_ver does not match torch's CUDA $TORCH_CUDA"; fi
    say "GPU present but $why: building mmcv with CPU ops only (minutes)."
    say "  Training still runs on the GPU: deformable attention and focal loss take their PyTorch"
    say "  paths there (make doctor shows the path per op; expect Mask2Former ~10-30% slower)."
    say "  For the CUDA kernels: the CUDA ${TORCH_CUDA%%.*}.x toolkit (conda install -c nvidia cuda-nvcc=$TORCH_CUDA,"
    say "  or module load cuda/$TORCH_CUDA), export CUDA_HOME, then MMCV_REBUILD=1 make install"
  fi
fi

mmcv_works() {  # right version, compiled ops load with this torch, CUDA kernels if wanted
  "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1 || return 1
  [[ $WITH_CUDA == 0 ]] || "$PY" segkit/plugins/models/ops_check.py
}

if [[ -z ${MMCV_REBUILD:-} ]] && mmcv_works; then
  say "keeping mmcv $MMCV_VERSION (ops load$([[ $WITH_CUDA == 1 ]] && echo ', CUDA kernels run'))"
else
  "${PIP[@]}" uninstall -y -q mmcv mmcv-lite mmcv-full >/dev/null 2>&1 || true
  PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  VARIANT=cpu
  [[ $WITH_CUDA == 1 ]] && VARIANT="cuda$TORCH_CUDA-sm${GPU_ARCHS//;/_}"
  CACHE=${SEGKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segkit}/wheels/mmcv-$MMCV_VERSION-$PYTAG-torch$tv-$VARIANT
  installed=0
  # 1. a wheel this machine built before for exactly this Python, torch and CUDA
  if compgen -G "$CACHE/mmcv-*.whl" >/dev/null; then
    say "installing mmcv from this machine's build cache ($CACHE)"
    pipq -c "$CONSTRAINTS" "$CACHE"/mmcv-*.whl && mmcv_works && installed=1
  fi
  # 2. SEGKIT_WHEELS: a prebuilt CPU wheel, kept only if its ops load with this torch
  if [[ $installed == 0 && ${#FIND_LINKS[@]} -gt 0 && $WITH_CUDA == 0 ]] \
     && compgen -G "$SEGKIT_WHEELS/mmcv-*.whl" >/dev/null; then
    if pipq -c "$CONSTRAINTS" "${FIND_LINKS[@]}" --only-binary mmcv "mmcv==$MMCV_VERSION" && mmcv_works; then
      say "installed the prebuilt mmcv from $SEGKIT_WHEELS"
      installed=1
    else
      say "no prebuilt mmcv in $SEGKIT_WHEELS works with torch $tv: building from source"
      "${PIP[@]}" uninstall -y -q mmcv >/dev/null 2>&1 || true
    fi
  fi
  # 3. build from PyPI's source distribution
  if [[ $installed == 0 ]]; then
    jobs=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
    if [[ $WITH_CUDA == 1 ]]; then
      say "building mmcv $MMCV_VERSION from source WITH CUDA kernels (sm $GPU_ARCHS, nvcc $nvcc_ver):" \
          "about $(( 300 / jobs + 5 )) min with $jobs jobs"
      export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$GPU_ARCHS
    else
      say "building mmcv $MMCV_VERSION from source with CPU ops: about $(( 20 / jobs ))-$(( 56 / jobs ))" \
          "min with $jobs jobs (measured on 2 cores: 10 min idle, 22-28 min on a busy machine)"
    fi
    SRC=$(mktemp -d)
    trap 'rm -rf "$CONSTRAINTS" "$SRC"' EXIT
    if [[ -n ${SEGKIT_WHEELS:-} && -f $SEGKIT_WHEELS/mmcv-$MMCV_VERSION.tar.gz ]]; then
      cp "$SEGKIT_WHEELS/mmcv-$MMCV_VERSION.tar.gz" "$SRC/"
    else
      [[ ${#OFFLINE[@]} -eq 0 ]] || die "offline: the wheelhouse has no mmcv-$MMCV_VERSION.tar.gz (make wheelhouse again)"
      "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$SRC" >/dev/null 2>&1 \
        || die "could not download mmcv $MMCV_VERSION's source from PyPI"
    fi
    tar -xzf "$SRC/mmcv-$MMCV_VERSION.tar.gz" -C "$SRC"
    LOG=$ENV_DIR/segkit-mmcv-build.log
    start=$SECONDS
    ( export MMCV_WITH_OPS=1 MAX_JOBS=$jobs
      # mmcv's setup.py compiles CUDA kernels whenever torch sees a GPU: hide the GPUs
      # from the CPU-ops build (else tens of minutes, or a failure without nvcc)
      [[ $WITH_CUDA == 1 ]] || export CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0
      exec "${PIP[@]}" wheel -v --no-deps --no-build-isolation "$SRC/mmcv-$MMCV_VERSION" -w "$SRC/dist"
    ) >"$LOG" 2>&1 &
    pid=$!
    next=$(( start + 120 ))
    while kill -0 "$pid" 2>/dev/null; do
      sleep 5
      if (( SECONDS >= next )); then
        say "  still compiling mmcv: $(( (SECONDS - start) / 60 )) min so far (log: $LOG)"
        next=$(( next + 120 ))
      fi
    done
    wait "$pid" || { tail -n 30 "$LOG" >&2; die "mmcv build failed; full log: $LOG"; }
    say "mmcv built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
    mkdir -p "$CACHE" && cp "$SRC"/dist/mmcv-*.whl "$CACHE"/
    pipq -c "$CONSTRAINTS" "$CACHE"/mmcv-*.whl || die "could not install the mmcv wheel just built"
    mmcv_works || die "mmcv was built but its ops do not load with torch $tv (see $LOG)"
  fi
fi

# ------------------------------------------------------------ the pinned rest
if [[ ${#OFFLINE[@]} -gt 0 ]]; then
  say "requirements.txt: installed from the wheelhouse's lock"
  [[ $DEV == 0 ]] || "$PY" -c 'import pytest' 2>/dev/null \
    || say "WARNING: offline, the test tools (requirements-dev.txt) are not in the wheelhouse and pytest is missing"
else
  say "installing requirements.txt$([[ $DEV == 1 ]] && echo ' and requirements-dev.txt')"
  reqs=(-r requirements.txt)
  [[ $DEV == 1 ]] && reqs+=(-r requirements-dev.txt)
  pipq -c "$CONSTRAINTS" ${FIND_LINKS[@]+"${FIND_LINKS[@]}"} "${reqs[@]}" \
    || die "pip could not install requirements (see the messages above)"
fi

# ---------------------------------------------------------------- torchvision
# PyPI's torchvision is a CUDA build: with a CPU torch it fails to import, and a
# torchvision that fails to import stops every mmengine Runner (collect_env).
tv_imports() { "$PY" -c 'import torchvision' >/dev/null 2>&1; }
if "$PY" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torchvision") is None)'; then
  if tv_imports; then say "keeping torchvision (it imports)"; else
    "${PIP[@]}" uninstall -y -q torchvision
    say "removed a torchvision that does not import with torch $tv (it would stop mmengine's Runner)"
  fi
elif [[ $TORCH_CUDA != none && ${#OFFLINE[@]} -eq 0 ]]; then
  if pipq -c "$CONSTRAINTS" torchvision && tv_imports; then say "installed torchvision (imports)"
  else "${PIP[@]}" uninstall -y -q torchvision >/dev/null 2>&1 || true
       say "torchvision skipped: no build for torch $tv imports here (segkit does not need it; it is only the MobileNetV3 converter's reference in the tests)"
  fi
else
  say "torchvision skipped: PyPI has no CPU build for torch $tv (segkit does not need it; it is only the MobileNetV3 converter's reference in the tests)"
fi

# --------------------------------------------------------------------- segkit
pipq --no-deps --no-build-isolation -e "$ROOT" || die "could not install segkit (editable)"
"$PY" -c 'import segkit, mmcv._ext, mmseg, mmdet.models' || die "the stack does not import (run: $PY tools/doctor.py)"
echo "$INPUTS $DEV" >"$STAMP"
say "done: $("$PY" -c 'import torch, mmcv, mmseg, mmdet, mmengine; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}")' 2>/dev/null)"
if [[ $ENV_KIND == "repo .venv" ]]; then
  say "make targets use $ENV_DIR; in your shell: source .venv/bin/activate"
fi
say "check the machine with: make doctor"

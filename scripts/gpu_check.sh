#!/usr/bin/env bash
# One-shot GPU check for a bare GPU machine with no network: install segkit from a
# carried wheelhouse into the machine's own torch, then doctor, the gpu tests, a
# 1-GPU NCCL training run of both demos, and the benchmarks; every step timed and
# recorded in OUT/gpu_check.json + OUT/summary.md (+ OUT/logs.tar.gz).
#
#   scripts/gpu_check.sh [--wheels DIR] [--out DIR] [--dry-run] [--skip STEP,...]
#                        [--epochs N] [--iters N] [--max-batch N] [--budget S] [--cuda-kernels]
#
#   --wheels DIR    the wheelhouse, default wheelhouse/; for the H200 (Python 3.12, 64 MiB carry):
#                   make wheelhouse PY_VERSION=3.12 PLATFORM=manylinux_2_28_x86_64 \
#                     EXCLUDE="$(cat scripts/gpu_check.have)"
#   --out DIR       results (default work_dirs/gpu_check); gpu_check.json, summary.md and
#                   logs.tar.gz are also copied to $OUT when it is set (the device tool's folder)
#   --budget S      wall-clock budget in seconds (default 540): each step gets what is left
#                   (timeout), later steps are skipped once it is spent; the record is always written
#   --dry-run       check the wheelhouse and print every step; runs nothing heavy (CPU ok)
#   --skip STEPS    any of: install,doctor,tests,demo,bench,maxbatch,hf,ops
#   --epochs N      demo training epochs (default 3); --iters N benchmark iterations (20)
#   --max-batch N   upper bound of the largest-batch search (default 64)
#   --cuda-kernels  build mmcv's CUDA kernels in the install (tens of minutes: not in 10)
# Budget (H200, 16 cores; estimates until measured): install 3-4 min (mmcv CPU ops
# build), doctor 0.3, tests 1, demos 1.5, bench 2.5, max batch 1.5, HF 1, ops 0.2.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WHEELS=wheelhouse RESULTS=work_dirs/gpu_check BUDGET=540 DRY=0 SKIP="" EPOCHS=3 ITERS=20 MAXB=64 KERNELS=0
die() { printf 'gpu_check: error: %s\n' "$*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) WHEELS=${2:?}; shift ;;
    --out) RESULTS=${2:?}; shift ;;
    --dry-run) DRY=1 ;;
    --skip) SKIP=",${2:?},"; shift ;;
    --epochs) EPOCHS=${2:?}; shift ;;
    --iters) ITERS=${2:?}; shift ;;
    --max-batch) MAXB=${2:?}; shift ;;
    --budget) BUDGET=${2:?}; shift ;;
    --cuda-kernels) KERNELS=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
for n in "$EPOCHS" "$ITERS" "$MAXB" "$BUDGET"; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive number"; done
for s in ${SKIP//,/ }; do
  [[ " install doctor tests demo bench maxbatch hf ops " == *" $s "* ]] || die "--skip $s: use install,doctor,tests,demo,bench,maxbatch,hf,ops"
done

# ------------------------------------------------------------- the wheelhouse
[[ -d $WHEELS ]] || die "wheelhouse $WHEELS not found: make wheelhouse WHEELHOUSE=$WHEELS PY_VERSION=3.12 PLATFORM=manylinux_2_28_x86_64 (then carry it), or --skip install"
WHEELS=$(cd "$WHEELS" && pwd)
LOCK=$WHEELS/segkit-wheelhouse.txt
if [[ $SKIP != *,install,* ]]; then
  [[ -f $LOCK ]] || die "$WHEELS has no segkit-wheelhouse.txt: not made by make wheelhouse"
  missing=()
  while IFS='=' read -r name _ version; do
    stem=$(echo "$name" | tr '-' '_')
    compgen -G "$WHEELS/${stem}-${version}[-.]*" >/dev/null || compgen -G "$WHEELS/${name}-${version}[-.]*" >/dev/null \
      || missing+=("$name==$version")
  done < <(grep -v '^#' "$LOCK" | sed '/^$/d')
  [[ ${#missing[@]} -eq 0 ]] || die "the wheelhouse lacks ${missing[*]}: make wheelhouse again"
  compgen -G "$WHEELS/mmcv-*" >/dev/null || die "the wheelhouse has no mmcv (wheel or sdist): make wheelhouse again"
  echo "gpu_check: wheelhouse $WHEELS: $(grep -vc '^#' "$LOCK") packages + $(basename "$(compgen -G "$WHEELS/mmcv-*" | head -1)"), for $(sed -n 's/^# target: \([^;]*\);.*/\1/p' "$LOCK")"
fi

# ------------------------------------------------------------------- the steps
PY=${PYTHON:-python3}   # the machine's Python with its torch
mkdir -p "$RESULTS/logs"
RESULTS=$(cd "$RESULTS" && pwd)
STEPS=$RESULTS/steps.tsv
: >"$STEPS"
START=$SECONDS
step() {  # step NAME CMD...: run (or print), time, log, record; never stop the check
  local name=$1; shift
  if [[ $SKIP == *",${name%%-*},"* ]]; then
    printf '%s\tskipped\t0\t\n' "$name" >>"$STEPS"; echo "== $name: skipped"; return 0
  fi
  if [[ $DRY == 1 ]]; then
    printf '== %s: %s\n' "$name" "$(printf '%q ' "$@")"; printf '%s\tdry-run\t0\t\n' "$name" >>"$STEPS"; return 0
  fi
  local left=$(( BUDGET - (SECONDS - START) ))
  if (( left < 10 )); then
    printf '%s\tskipped (budget)\t0\t\n' "$name" >>"$STEPS"; echo "== $name: skipped (budget spent)"; return 0
  fi
  echo "== $name ($(( SECONDS - START )) s in, $left s left)"
  local t0=$SECONDS rc=0 log=$RESULTS/logs/$name.log
  timeout -k 10 "$left" "$@" >"$log" 2>&1 || rc=$?
  tail -n 4 "$log" | sed 's/^/   /'
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( SECONDS - t0 ))" "$log" >>"$STEPS"
  echo "   -> rc $rc in $(( SECONDS - t0 )) s"
}
B=$RESULTS/bench
mkdir -p "$B"
SF_STOCK=mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py
SF_OURS=configs/segformer/segformer_mit-b2_3xb6-200e_voc12aug-512x512_amp.py
M2F_STOCK=mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py
M2F_OURS=configs/mask2former/mask2former_swin-t_3xb4-200e_ade20k-512x512_amp.py
BENCH=(tools/benchmark.py --synthetic --iters "$ITERS" --warmup 5)
PYENV=$("$PY" -c 'import sys; print(sys.prefix)' 2>/dev/null || echo "")
export VIRTUAL_ENV=$PYENV   # install.sh installs into the env of the machine's torch
[[ $KERNELS == 1 ]] || export MMCV_CPU_ONLY=1
export PYTHON=$PY PYTHONUNBUFFERED=1

step install env SEGKIT_WHEELS="$WHEELS" PIP_INDEX_URL=http://127.0.0.1:9/ bash scripts/install.sh
step doctor "$PY" tools/doctor.py
step tests "$PY" -m pytest -q -m gpu tests/
step demo-data "$PY" tools/make_demo_data.py --out data/demo
for cfg in configs/demo/*.py; do
  step "demo-$(basename "$cfg" .py | cut -d_ -f1)" bash tools/dist_train.sh "$cfg" 1 \
    --work-dir "$RESULTS/work/$(basename "$cfg" .py)" --cfg-options "train_cfg.max_epochs=$EPOCHS" "train_cfg.val_interval=1"
done
step bench-segformer "$PY" "${BENCH[@]}" "$SF_STOCK" --batch 6 --compare "$SF_OURS" --json "$B/segformer.json"
step bench-mask2former "$PY" "${BENCH[@]}" "$M2F_STOCK" --batch 4 --compare "$M2F_OURS" --json "$B/mask2former.json" --no-flops
step maxbatch-segformer "$PY" tools/benchmark.py "$SF_OURS" --synthetic --find-max-batch --max-batch "$MAXB" --iters 3 --warmup 1 --no-flops --json "$B/segformer_max.json"
step maxbatch-mask2former "$PY" tools/benchmark.py "$M2F_OURS" --synthetic --find-max-batch --max-batch "$MAXB" --iters 3 --warmup 1 --no-flops --json "$B/mask2former_max.json"
step hf-segformer "$PY" -m segkit.bench.hf_peer segformer --batch 6 --size 512 --iters "$ITERS" --json "$B/hf_segformer.json"
step hf-mask2former "$PY" -m segkit.bench.hf_peer mask2former --batch 4 --size 512 --iters "$ITERS" --json "$B/hf_mask2former.json"
step ops-msda "$PY" -m segkit.bench.ops_cost --batch 4 --size 512 --json "$B/ops_msda.json"

if [[ $DRY == 1 ]]; then
  echo "gpu_check: dry run: $(wc -l <"$STEPS") steps listed, nothing run"
  exit 0
fi
"$PY" -m segkit.bench.gpu_report "$RESULTS" --total-s $(( SECONDS - START ))
tar -czf "$RESULTS/logs.tar.gz" -C "$RESULTS" logs steps.tsv bench 2>/dev/null || true
if [[ -n ${OUT:-} && -d ${OUT:-} && $(cd "$OUT" && pwd) != "$RESULTS" ]]; then
  cp "$RESULTS/gpu_check.json" "$RESULTS/summary.md" "$RESULTS/logs.tar.gz" "$OUT/"
fi

#!/usr/bin/env bash
# Collect every wheel / sdist that `make install` needs into one folder, for a machine
# with no network:  make wheelhouse, carry the folder, then there
#   SEGKIT_WHEELS=DIR make install          (pip --no-index: nothing is downloaded)
#
# Environment (all optional):
#   WHEELHOUSE=DIR       where (default: wheelhouse/)
#   PY_VERSION=3.12      the target's Python (default: this machine's)
#   PLATFORM=manylinux_2_28_x86_64   the target's platform tag (default: this machine's;
#                        older manylinux tags of the same arch are accepted too)
#   EXCLUDE="torch numpy opencv ..."  packages the target already has in versions that
#                        satisfy the pins: left out (default: torch; "opencv" = any
#                        opencv-python*). torch is never collected: install on the
#                        target keeps its torch (2.6 <= torch < 2.14).
# What: the build tooling (setuptools, wheel, ninja, psutil), mmcv (this machine's
# built wheel when the target is this machine and one exists, else its sdist: the
# target builds its ops), requirements.txt with every dependency, resolved for the
# target by pip; opencv-python is swapped for opencv-python-headless (same cv2, no
# GUI, no 60 MB of Qt). The lock and marker file segkit-wheelhouse.txt lists what
# scripts/install.sh installs (--no-deps, in that order).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in -h|--help) sed -n '2,20p' "$0"; exit 0 ;; "") ;;
  *) echo "wheelhouse.sh: no arguments (use WHEELHOUSE= PY_VERSION= PLATFORM= EXCLUDE=)" >&2; exit 2 ;; esac
say() { printf '[wheelhouse] %s\n' "$*"; }
die() { printf '[wheelhouse] error: %s\n' "$*" >&2; exit 2; }

eval "$(python3 "$ROOT/segkit/facts.py")"
PY=${PYTHON:-}
[[ -n $PY ]] || { [[ -x .venv/bin/python ]] && PY=.venv/bin/python || PY=python3; }
OUT=${WHEELHOUSE:-wheelhouse}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE_PY=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
HERE_PLAT=$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
TARGET_PY=${PY_VERSION:-$HERE_PY}
[[ $TARGET_PY =~ ^3\.[0-9]+$ ]] || die "PY_VERSION=$TARGET_PY: use MAJOR.MINOR, e.g. 3.12"
EXCLUDE_LIST=" torch $(echo "${EXCLUDE:-}" | { grep -v '^#' || true; } | tr ',\n\tA-Z' '   a-z' | tr -s ' ') "
excluded() {  # normalized name -> 0 if the target has it
  local n=$1
  [[ $EXCLUDE_LIST == *" $n "* ]] && return 0
  [[ $n == opencv-python* && $EXCLUDE_LIST == *" opencv "* ]] && return 0
  return 1
}

TARGET=()   # pip's options for a foreign target (wheels only)
if [[ -n ${PY_VERSION:-} && $TARGET_PY != "$HERE_PY" || -n ${PLATFORM:-} ]]; then
  plat=${PLATFORM:-$HERE_PLAT}
  TARGET=(--only-binary :all: --python-version "$TARGET_PY" --implementation cp --platform "$plat")
  if [[ $plat =~ ^manylinux_2_([0-9]+)_(.*)$ ]]; then  # pip matches tags exactly: add the older ones
    for ((n = BASH_REMATCH[1] - 1; n >= 17; n--)); do TARGET+=(--platform "manylinux_2_${n}_${BASH_REMATCH[2]}"); done
    TARGET+=(--platform "manylinux2014_${BASH_REMATCH[2]}")
  fi
  say "target: Python $TARGET_PY, $plat (foreign: wheels only, mmcv as source)"
else
  say "target: this machine (Python $HERE_PY, $HERE_PLAT)"
fi
PIP=("$PY" -m pip --disable-pip-version-check)
quiet() { grep -v -e "^WARNING: Location '.*' is ignored" -e '^$' >&2 || true; }

# 1. resolve: what pip would install on an empty target, read from its report
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
{ echo "setuptools$SETUPTOOLS"; echo wheel; echo ninja; echo psutil
  sed -e 's/ *#.*//' -e '/^$/d' requirements.txt
  # mmcv's own runtime needs (its wheel is installed --no-deps)
  printf '%s\n' addict packaging Pillow pyyaml yapf numpy; } >"$WORK/req.txt"
say "resolving requirements.txt + mmcv's needs + build tools with pip (a minute or two)"
"${PIP[@]}" install -q --dry-run --ignore-installed --target "$WORK/t" --report "$WORK/report.json" \
  ${TARGET[@]+"${TARGET[@]}"} -r "$WORK/req.txt" 2> >(quiet) \
  || die "pip could not resolve the requirements for Python $TARGET_PY (network to the index?)"

# 2. the lock: name==version in pip's install order, minus what the target has
LOCK=$OUT/segkit-wheelhouse.txt
"$PY" - "$WORK/report.json" >"$WORK/pins.txt" <<'EOF'
import json, re, sys
for item in json.load(open(sys.argv[1]))['install']:
    name = re.sub(r'[-_.]+', '-', item['metadata']['name']).lower()
    print(name, item['metadata']['version'])
EOF
{ echo "# segkit wheelhouse: scripts/install.sh installs these with pip --no-index --no-deps"
  echo "# target: Python $TARGET_PY ${PLATFORM:-$HERE_PLAT}; excluded (the target has them):${EXCLUDE_LIST% }"
  echo "# made $(date -u +%FT%TZ) by make wheelhouse"; } >"$LOCK"
PINS=()
while read -r name version; do
  if [[ $name == opencv-python ]]; then name=opencv-python-headless; fi  # same cv2, no GUI
  excluded "$name" && continue
  PINS+=("$name==$version")
  echo "$name==$version" >>"$LOCK"
done <"$WORK/pins.txt"
say "collecting ${#PINS[@]} packages (left out: ${EXCLUDE_LIST% })"
printf '%s\n' "${PINS[@]}" >"$WORK/pins.req"
"${PIP[@]}" download -q --no-deps -d "$OUT" ${TARGET[@]+"${TARGET[@]}"} -r "$WORK/pins.req" 2> >(quiet) \
  || die "pip download failed (see above)"

# 3. mmcv: this machine's working build for this target, else the source
rm -f "$OUT"/mmcv-*
MMCV=""
if [[ ${#TARGET[@]} -eq 0 ]]; then
  TV=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
  PYTAG=cp${HERE_PY/./}
  for cand in "${SEGKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segkit}/wheels/mmcv-$MMCV_VERSION-$PYTAG-torch$TV-cpu"/mmcv-*.whl \
              ${SEGKIT_WHEELS:+"$SEGKIT_WHEELS"/mmcv-$MMCV_VERSION-$PYTAG-*.whl}; do
    [[ -f $cand ]] && { cp "$cand" "$OUT/"; MMCV=$(basename "$cand"); break; }
  done
fi
if [[ -z $MMCV ]]; then
  "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$OUT" 2> >(quiet) \
    || die "could not download mmcv $MMCV_VERSION's source"
  MMCV=mmcv-$MMCV_VERSION.tar.gz
fi
echo "# mmcv: $MMCV" >>"$LOCK"
say "mmcv: $MMCV"
say "done: $(ls "$OUT" | wc -l) files, $(du -sh "$OUT" | cut -f1) in $OUT"
say "on the target: SEGKIT_WHEELS=$OUT make install   (no network needed)"

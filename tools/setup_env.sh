#!/usr/bin/env bash
# Build kd_det's pinned environment once, cache it, and link it as .venv.
#
# The venv lives in $KD_DET_CACHE (default ~/.cache/kd_det) under a name derived from
# requirements/*.txt, so a re-run with the same pins only re-links it (seconds), while a changed
# pin builds a fresh one. mmcv 2.1.0 has no wheel for torch 2.13: it is compiled from source with
# its ops once and the wheel is cached for later venvs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KD_DET_CACHE:-$HOME/.cache/kd_det}
python=${PYTHON:-python3}
pins_hash=$(cat "$repo"/requirements/*.txt | sha1sum | cut -c1-10)
venv="$cache/venv-$pins_hash"
stamp="$venv/.kd_det_complete"

link_venv() { ln -sfn "$venv" "$repo/.venv"; }
# Editable install of this checkout; also links configs/ and tools/ as kd_det/.mim for mim.
install_editable() {
  (cd "$repo" && "$venv/bin/python" setup.py -q develop --no-deps > "$venv/develop.log" 2>&1) \
    || { cat "$venv/develop.log"; echo "[setup_env] editable install of kd_det failed" >&2; exit 1; }
}

if [ -f "$stamp" ]; then
  link_venv
  # The editable install points at the checkout that built the venv; refresh it for this one.
  # Checked from outside the checkout, where `import kd_det` cannot find ./kd_det by accident.
  if ! (cd / && "$venv/bin/python" -c "import kd_det, os, sys; sys.exit(os.path.dirname(kd_det.__file__) != '$repo/kd_det')" 2>/dev/null) \
      || [ ! -e "$repo/kd_det/.mim/configs" ]; then
    install_editable
  fi
  echo "kd_det env ready: $repo/.venv -> $venv"
  exit 0
fi

echo "[setup_env] building $venv (first time only; mmcv compiles once, for tens of minutes on 2 cores)"
start=$(date +%s)
rm -rf "$venv"
mkdir -p "$cache/wheels"
"$python" -m venv "$venv"
pip="$venv/bin/pip"
"$pip" install -q --upgrade pip 'setuptools<70' wheel
# torch first, alone, so nothing later can pull a CUDA build: later steps are constrained to it.
"$pip" install -q -r "$repo/requirements/torch.txt"
"$pip" install -q -c "$repo/requirements/torch.txt" -r "$repo/requirements/build.txt"

mmcv_wheel=$(ls "$cache"/wheels/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$mmcv_wheel" ]; then
  echo "[setup_env] compiling mmcv 2.1.0 with ops"
  # -g0: Python's default CFLAGS carry -g, and debug info for ~80 files full of torch headers
  # doubles the compile time (roi_align.cpp: 121 s with -g, 55 s without, here) for no use.
  CFLAGS="${CFLAGS:-} -g0" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=0 \
    "$pip" wheel --no-build-isolation --no-deps -w "$cache/wheels" mmcv==2.1.0
  mmcv_wheel=$(ls "$cache"/wheels/mmcv-2.1.0-*.whl | head -n1)
fi
"$pip" install -q -c "$repo/requirements/torch.txt" "$mmcv_wheel"
"$pip" install -q -c "$repo/requirements/torch.txt" -c "$repo/requirements/build.txt" \
  -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt"
grep -v '^openmim' "$repo/requirements/mim.txt" > "$venv/mim-deps.txt"
"$pip" install -q -c "$repo/requirements/build.txt" -r "$venv/mim-deps.txt"
"$pip" install -q --no-deps "$(grep '^openmim' "$repo/requirements/mim.txt")"
"$pip" install -q --no-deps -r "$repo/requirements/deploy_nodeps.txt"
install_editable
(cd / && "$venv/bin/python" -c "import mmcv.ops, mmdet, kd_det, ncnn, pnnx, pkg_resources; import mmrazor.models; print('kd_det env imports ok')")
touch "$stamp"
link_venv
echo "[setup_env] done in $(( $(date +%s) - start )) s: $repo/.venv -> $venv"

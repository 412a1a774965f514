#!/usr/bin/env bash
# GPU figures for the speed issue, as one short prepared run (~10 min on one H200; GPU time is scarce).
#
# The device machine gets a copy of the working tree only (64 MiB at most), not ../shared: pack the
# essays and a float16 copy of MiniLM (45 MB instead of 88) into gpu-material/ first, here:
#
#   bash scripts/gpu_check.sh pack        # writes gpu-material/ (git-ignored)
#
# then, through the device tool, with carry ["gpu-material"]:
#
#   bash scripts/gpu_check.sh             # writes $OUT/gpu-*.md / .json
#
# What it measures, each in fresh processes (scripts/benchmark.py, scripts/precision_check.py):
# samples/s of the seed workflow (a) and tfslm (b) with mixed precision auto (bf16 on Ampere+) and off,
# XLA on (jit_compile + static_shapes) and off; MFU is benchmark.py's "model FLOP share" against the
# measured matmul peak; then the float32 / bf16 validation-loss parity on the essays (2 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
MATERIAL=${TFSLM_GPU_MATERIAL:-gpu-material}
PY=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}

if [[ "${1:-}" == "pack" ]]; then
  mkdir -p "$MATERIAL/models" "$MATERIAL/data"
  cp -r ../shared/data/essay-br "$MATERIAL/data/"
  $PY - "$MATERIAL/models/all-MiniLM-L6-v2" <<'EOF'
import shutil, sys
from pathlib import Path
from safetensors.numpy import load_file, save_file
src, dst = Path("../shared/models/all-MiniLM-L6-v2"), Path(sys.argv[1])
dst.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if f.name != "model.safetensors":
        shutil.copy2(f, dst / f.name)
save_file({k: v.astype("float16") for k, v in load_file(src / "model.safetensors").items()}, dst / "model.safetensors")
EOF
  grep -qx "/$MATERIAL/" .git/info/exclude 2>/dev/null || echo "/$MATERIAL/" >> .git/info/exclude
  du -sh "$MATERIAL"
  exit 0
fi

OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
# The device machine reaches no package registry: it needs a Python with tensorflow, tf-keras and
# transformers 4.x already there (PYTHON=...); tfslm itself runs from the tree (PYTHONPATH).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import tensorflow as tf, transformers; print(tf.__version__, transformers.__version__, tf.config.list_physical_devices('GPU'))" | tee "$OUT/gpu-versions.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu-info.txt" || true
ESSAYS="$MATERIAL/data/essay-br/development.csv"
MODEL="$MATERIAL/models/all-MiniLM-L6-v2"
COMMON=(--essays "$ESSAYS" --model "$MODEL" --only essays-256 essays-512 short-256 --repeats 2 --scale-rows)
$PY scripts/benchmark.py "${COMMON[@]}" --methods a b --out "$OUT/gpu-bench.md"
$PY scripts/benchmark.py "${COMMON[@]}" --methods b --set mixed_precision=off --out "$OUT/gpu-bench-f32.md"
$PY scripts/benchmark.py "${COMMON[@]}" --methods b --set jit_compile=true --set static_shapes=true --out "$OUT/gpu-bench-xla.md"
$PY scripts/precision_check.py --epochs 2 --variants f32 bf16-default \
  --set "data.train_file=$ESSAYS" --set "model.checkpoint=$MODEL" --json "$OUT/gpu-precision.json" | tail -8 > "$OUT/gpu-precision.md"

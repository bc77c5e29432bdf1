#!/usr/bin/env bash
# Run ON THE LENT GPU MACHINE, in one call, after tools/gpu_checks/fetch_wheels.sh
# filled .whl/ here:   run(command="bash tools/gpu_checks/device_run.sh",
#                          carry=[".whl"], timeout_s=420)
# Installs the OpenMMLab wheels beside the image's torch (no network there),
# then runs the AMD step benchmark: ViT-B student + ViT-L teacher, 16x224,
# bf16, and the plain VideoMAE ViT-B beside it (step_gpu.py), and the
# prefetch-thread check (prefetch_gpu.py: CUDA stream hand-over, hidden decode
# time). Figures and logs go to $OUT (they come back with the call).
# Exit status: 0 when both checks pass.
#
# Smoke test on a CPU machine (what CI-less sessions can check):
#   PYTHON=python DEVICE=cpu CONFIG=configs/tiny/amd_tiny_motion.py CLIPS=2 \
#   OUT=/tmp/out bash tools/gpu_checks/device_run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu_out}
DEVICE=${DEVICE:-cuda}
CLIPS=${CLIPS:-32}
CONFIG=${CONFIG:-configs/pretrain/amd_vit-b_vit-l-teacher_16x224_k400.py}
SITE=${SITE:-/tmp/amd_site}
mkdir -p "$OUT"
ls .whl/*.whl >/dev/null 2>&1 || { echo "FAIL: no wheels in .whl/: run tools/gpu_checks/fetch_wheels.sh here and carry .whl"; exit 2; }
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
} > "$OUT/env.txt" 2>&1
"$PYTHON" -m pip install --quiet --no-index --no-deps --target "$SITE" .whl/*.whl > "$OUT/install.log" 2>&1 \
  || { cat "$OUT/install.log"; echo "FAIL: wheel install"; exit 2; }
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import mmengine, mmaction, amd_mmaction; print("mmengine", mmengine.__version__, "mmaction", mmaction.__version__)' >> "$OUT/env.txt" 2>&1 \
  || { cat "$OUT/env.txt"; echo "FAIL: import of the installed stack"; exit 2; }
cat "$OUT/env.txt"
"$PYTHON" tools/gpu_checks/step_gpu.py --device "$DEVICE" --config "$CONFIG" --clips "$CLIPS" \
    --json "$OUT/step_gpu.json" 2>&1 | grep -v -i "warn" | tee "$OUT/step_gpu.log"
step_rc=${PIPESTATUS[0]}
"$PYTHON" tools/gpu_checks/prefetch_gpu.py --device "$DEVICE" --json "$OUT/prefetch_gpu.json" 2>&1 \
    | grep -v -i "warn" | tee "$OUT/prefetch_gpu.log"
prefetch_rc=${PIPESTATUS[0]}
echo "step_gpu rc=$step_rc prefetch_gpu rc=$prefetch_rc"
[ "$step_rc" = 0 ] && [ "$prefetch_rc" = 0 ]

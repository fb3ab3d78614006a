#!/usr/bin/env bash
# Trains etok's default model on a lent GPU machine (the `device` tool), then evaluates and exports.
#
#   usage (on the GPU machine, repo root):  bash Tools/train_gpu.sh MINUTES [BATCH] [LR]
#
# Preparation here, before the device call (paths are git-ignored; they travel with `carry`):
#   mkdir -p data runs/gpu-in
#   cp ~/.cache/etok/data/train-v1.npz ~/.cache/etok/data/eval-bikes-v1.npz data/
#   device run: command "bash Tools/train_gpu.sh 10", carry ["data"], timeout_s 780
#   The 64 MiB the call may carry hold the work tree (~4 MB) and the two dataset files (53 MB),
#   so the GPU run starts from random init; 10 GPU minutes are worth days of this CPU anyway.
#   With a smaller dataset, weights can travel too: `python3 Tools/train.py --run default
#   --save-weights runs/gpu-in/weights` (fp32, ~21 MB in two parts) and carry "runs/gpu-in".
# Dry run on the CPU (a few steps, tiny evaluation): DRYRUN=1 bash Tools/train_gpu.sh 0.3
#
# What comes back under $OUT (at most 8 files of 16 MiB):
#   weights.part0.pt, weights.part1.pt   fp32 weights + step/sample counters (resume with
#                                        python3 Tools/train.py --run NEW --init-weights P0,P1)
#   default.safetensors                  fp16 export with the config in the metadata
#   eval.jsonl                           held-out PSNR/SSIM and adaptive-search numbers
#   train.log                            loss and samples/s
# Runs on the CPU too (slowly), which is how its flags were checked.
set -uo pipefail
MINUTES=${1:-10}
BATCH=${2:-128}
LR=${3:-2e-3}
OUT=${OUT:-/tmp/etok-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
ROOT=$(mktemp -d /tmp/etok-gpu.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/data" "$ROOT/runs"
for f in train-v1.npz eval-bikes-v1.npz; do
    if [ ! -f "data/$f" ]; then echo "train_gpu.sh: data/$f missing (carry \"data\")" >&2; exit 2; fi
    ln -s "$PWD/data/$f" "$ROOT/data/$f"
done
INIT=()
if ls runs/gpu-in/weights.part*.pt >/dev/null 2>&1; then
    INIT=(--init-weights "$(ls runs/gpu-in/weights.part*.pt | sort | paste -sd, -)")
fi
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/train.log"
THREADS=$(nproc 2>/dev/null || echo 8)
python3 Tools/train.py --run gpu --out "$ROOT" "${INIT[@]}" --batch "$BATCH" --lr "$LR" \
    --warmup 300 --minutes "$MINUTES" --ckpt-minutes 2 --eval-minutes 100000 --log-every 100 \
    --threads "$THREADS" 2>&1 | tee -a "$OUT/train.log"
EVAL=()
if [ -n "${DRYRUN:-}" ]; then EVAL=(--eval-chunks 1 --eval-fixed-chunks 1); fi
python3 Tools/train.py --run gpu --out "$ROOT" --eval-only --threads "$THREADS" "${EVAL[@]}" \
    --save-weights "$OUT/weights" --export "$OUT/default.safetensors" 2>&1 | tee -a "$OUT/train.log"
cp "$ROOT/runs/gpu/eval.jsonl" "$OUT/eval.jsonl" 2>/dev/null || true
ls -l "$OUT"

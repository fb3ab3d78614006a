#!/usr/bin/env bash
# Trains etok's default model on a lent GPU machine (the `device` tool), then evaluates and exports.
#
#   usage (on the GPU machine, repo root):  bash Tools/train_gpu.sh MINUTES [BATCH] [LR]
#
# Preparation here, before the device call (paths are git-ignored; they travel with `carry`):
#   mkdir -p data && cp ~/.cache/etok/data/train-v3.npz data/   (v3: twice v2's real footage,
#   prepared exactly as etok encode prepares frames: etok-tools data; v2 and v1 work too)
#   device run: command "bash Tools/train_gpu.sh 7", carry ["data"], timeout_s 600
#   The 64 MiB a call may carry hold the work tree (~15 MB with the shipped weights) and the
#   training set (v3: 46.3 MB; with the tracked tree 62.1 MB on 2026-11-27): the held-out set
#   (4.5 MB) would leave under 1 MB to spare, so evaluate here afterwards
#   (train.py --run X --init-weights P0,P1 --eval-only). Without runs/gpu-in the run starts
#   from the shipped weights (Sources/EtokTokenizer/Resources/default.safetensors). Other fp32
#   weights (weights.part*.pt, ~21 MB) fit beside v3 only with a smaller training set: the
#   CPU-trained ctx/cpu3 weights are no better on held-out footage (docs/model.md), so start
#   from the shipped ones.
#   A second call on the still-warm machine finds data/ there: carry only ["runs/gpu-in"] with
#   the first call's weights.part*.pt copied into runs/gpu-in/ (measured 2026-11-27: 7 + 4.5
#   minutes on an H200 in 900 s of device budget, ~800 samples/s).
#   Environment: COOL (cool-down minutes, default a quarter of MINUTES), FULL_KEEP (0.3),
#   CONTEXT_KEEP (0; train.py --context-keep, see docs/model.md "Where the gap is"),
#   COMPILE=1 (torch.compile the forward; untried on a GPU: the 2026-11-27 H200 run did 160 ms a
#   step eagerly, ~800 samples/s at batch 128, of which ~26 ms is the host's sampler, now drawn
#   ahead on a thread; compare samples/s in train.log against that).
# Dry run on the CPU (a few steps, tiny evaluation; batch 8, since batch 128 needs more than the
# 14 GiB this machine had free): DRYRUN=1 bash Tools/train_gpu.sh 0.5 8
#
# What comes back under $OUT (at most 8 files of 16 MiB):
#   weights.part0.pt, weights.part1.pt   fp32 weights + step/sample counters (resume with
#                                        etok-tools train --run NEW --init-weights P0,P1)
#   default.safetensors                  fp16 export with the config in the metadata; no
#                                        threshold yet: run Tools/evaluate_candidate.sh on it
#                                        here (calibrates a copy on the unseen clips, then
#                                        measures it beside the shipped model) before shipping
#   eval.jsonl                           held-out PSNR/SSIM and adaptive-search numbers
#   train.log                            loss and samples/s
# Runs on the CPU too (slowly), which is how its flags were checked.
set -uo pipefail
MINUTES=${1:-10}
BATCH=${2:-128}
LR=${3:-2e-3}
FULL_KEEP=${FULL_KEEP:-0.3}   # share of blocks with every token kept (trains the tail; docs/model.md)
CONTEXT_KEEP=${CONTEXT_KEEP:-0}  # share of sequences: full first block, falling counts (docs/model.md)
COOL=${COOL:-$(python3 -c "print(round(0.25 * $MINUTES, 2))")}   # last quarter: LR cool-down to 0
OUT=${OUT:-/tmp/etok-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# etok-tools from this checkout, installed or not (README "Python tools")
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)/python${PYTHONPATH:+:$PYTHONPATH}"
ROOT=$(mktemp -d /tmp/etok-gpu.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/data" "$ROOT/runs"
TRAIN=$(ls data/train-v3.npz data/train-v2.npz data/train-v1.npz 2>/dev/null | head -1)
if [ -z "$TRAIN" ]; then echo "train_gpu.sh: data/train-v3.npz (or -v2, -v1) missing (carry \"data\")" >&2; exit 2; fi
ln -s "$PWD/$TRAIN" "$ROOT/data/"
# The held-out set is optional: without it the run only trains and exports (evaluate here later
# with train.py --eval-only), which keeps the carried tree under the 64 MiB limit.
HAVE_EVAL=
EVALSET=$(ls data/eval-bikes-v3.npz data/eval-bikes-v2.npz data/eval-bikes-v1.npz 2>/dev/null | head -1)
if [ -n "$EVALSET" ]; then ln -s "$PWD/$EVALSET" "$ROOT/data/"; HAVE_EVAL=1; fi
DATA_ARGS=(--data "$ROOT/$TRAIN" --eval-data "$ROOT/${EVALSET:-data/none.npz}")
INIT=()
if ls runs/gpu-in/weights.part*.pt >/dev/null 2>&1; then
    INIT=(--init-weights "$(ls runs/gpu-in/weights.part*.pt | sort | paste -sd, -)")
fi
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/train.log"
THREADS=$(nproc 2>/dev/null || echo 8)
python3 -m etok.tools train --run gpu --out "$ROOT" "${DATA_ARGS[@]}" "${INIT[@]}" --batch "$BATCH" --lr "$LR" --full-keep "$FULL_KEEP" --context-keep "$CONTEXT_KEEP" $([ "${COMPILE:-0}" = 1 ] && echo --compile) \
    --warmup 300 --minutes "$MINUTES" --cooldown-minutes "$COOL" --ckpt-minutes 2 --eval-minutes 100000 --log-every 100 \
    --threads "$THREADS" 2>&1 | tee -a "$OUT/train.log"
EVAL=()
if [ -n "${DRYRUN:-}" ]; then EVAL=(--eval-chunks 1 --eval-fixed-chunks 1); fi
python3 -m etok.tools train --run gpu --out "$ROOT" "${DATA_ARGS[@]}" --threads "$THREADS" \
    --save-weights "$OUT/weights" --export "$OUT/default.safetensors" 2>&1 | tee -a "$OUT/train.log"
if [ -n "$HAVE_EVAL" ]; then
    python3 -m etok.tools train --run gpu --out "$ROOT" "${DATA_ARGS[@]}" --eval-only --threads "$THREADS" "${EVAL[@]}" \
        2>&1 | tee -a "$OUT/train.log"
fi
cp "$ROOT/runs/gpu/eval.jsonl" "$OUT/eval.jsonl" 2>/dev/null || true
ls -l "$OUT"

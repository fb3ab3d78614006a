#!/usr/bin/env bash
# Everything needed to decide whether new weights ship (docs/model.md), in one command:
#
#   bash Tools/evaluate_candidate.sh CANDIDATE.safetensors [OUTDIR]
#
# 1. calibrates a copy of the candidate on the unseen calibration clips (etok-tools calibrate
#    writes OUTDIR/calibrated.safetensors; the candidate file itself is left as it is),
# 2. measures it and the shipped model side by side on the same footage, at each one's own
#    calibrated threshold: etok-tools bench codec on bikes.mp4 (no timings worth quoting: one run,
#    no memory run), etok-tools bench clips on the unseen clips, etok-tools context-gain on bikes.
# Reports land in OUTDIR (default /tmp/etok-candidate). Ship only if bikes improves at the
# candidate's own threshold (the bar of issue 4: share of frames meeting it, tokens per frame,
# and the ratio against the smallest matching fixed budget), then copy calibrated.safetensors to
# Sources/EtokTokenizer/Resources/default.safetensors and refresh the model card's tables.
# Took about 45 minutes on 2 cores with the budget search before 2026-11-27's (1.4-1.8x faster
# encodes now; not re-timed). BASELINE=FILE compares against other weights than the shipped
# ones; BASELINE=none measures the candidate alone.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: bash Tools/evaluate_candidate.sh CANDIDATE.safetensors [OUTDIR]  (${1:-no file given}: not found)" >&2
    exit 64
fi
CANDIDATE=$1
OUT=${2:-/tmp/etok-candidate}
BASELINE=${BASELINE:-Sources/EtokTokenizer/Resources/default.safetensors}
mkdir -p "$OUT"
# etok-tools from this checkout, installed or not (README "Python tools")
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)/python${PYTHONPATH:+:$PYTHONPATH}"
python3 -m etok.tools calibrate "$CANDIDATE" --out "$OUT/calibrated.safetensors" | tee "$OUT/calibrate.txt"
WHO=(baseline candidate)
[ "$BASELINE" = none ] && WHO=(candidate)
for who in "${WHO[@]}"; do
    model=$BASELINE
    [ "$who" = candidate ] && model=$OUT/calibrated.safetensors
    echo "== $who: $model"
    python3 -m etok.tools bench codec --model "$model" --runs 1 --no-memory --clips Samples/bikes.mp4 \
        --searches fast > "$OUT/codec-$who.md"
    python3 -m etok.tools bench clips --model "$model" > "$OUT/clips-$who.md"
    python3 -m etok.tools context-gain "$model" --clips Samples/bikes.mp4 > "$OUT/context-$who.md"
    # the fast search's row, and the row of the ratio against the smallest matching fixed budget
    grep -E "^\| bikes.mp4 \| fast \||×" "$OUT/codec-$who.md" || true
    grep -E "^Pooled" "$OUT/clips-$who.md" || true
done
echo "reports in $OUT: calibrate.txt, codec-*.md, clips-*.md, context-*.md"

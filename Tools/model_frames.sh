#!/usr/bin/env bash
# Draws docs/model-frames.png for the model card: one held-out frame as the model sees it, then
# etok's decoded reconstructions at fixed budgets of 25%, 50% and 100% of the tokens (2x, nearest).
#
#   usage: bash Tools/model_frames.sh [MODEL.safetensors] [FRAME] [OUT.png]
#   (defaults: the bundled model, frame 120 of Samples/bikes.mp4, docs/model-frames.png)
# Needs a release build of etok (swift build -c release --product etok) and the ffmpeg tool.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:-}
FRAME=${2:-120}
OUT=${3:-$ROOT/docs/model-frames.png}
CLIP=$ROOT/Samples/bikes.mp4
ETOK=$(cd "$ROOT" && swift build -c release --show-bin-path)/etok
[ -x "$ETOK" ] || { echo "model_frames.sh: $ETOK missing: swift build -c release --product etok" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=()
if [ -n "$MODEL" ]; then M=(--model "$MODEL"); fi
MAX=$("$ETOK" model info $MODEL --json | python3 -c "import json,sys; print(json.load(sys.stdin)['config']['max_toks'])")
"$ETOK" preview "$CLIP" -q -y -o "$TMP/in.y4m"
ffmpeg -v error -y -i "$TMP/in.y4m" -vf "select=eq(n\,$FRAME)" -frames:v 1 "$TMP/p0.png"
i=1
for n in $((MAX / 4)) $((MAX / 2)) "$MAX"; do
    "$ETOK" encode "$CLIP" "${M[@]}" --fixed "$n" -q -y -o "$TMP/f$n.etok"
    "$ETOK" decode "$TMP/f$n.etok" "${M[@]}" --frames "$FRAME:$((FRAME + 1))" -q -y -o "$TMP/p$i.png"
    i=$((i + 1))
done
ffmpeg -v error -y -i "$TMP/p0.png" -i "$TMP/p1.png" -i "$TMP/p2.png" -i "$TMP/p3.png" \
    -filter_complex "hstack=inputs=4,scale=iw*2:ih*2:flags=neighbor" "$OUT"
echo "model_frames.sh: wrote $OUT (frame $FRAME: input | $((MAX / 4)) | $((MAX / 2)) | $MAX tokens)"

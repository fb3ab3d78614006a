#!/usr/bin/env bash
# The README's first command: builds etok (release) and runs the main job on a bundled sample,
# writing everything under ${ETOK_DEMO_DIR:-/tmp/etok-demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${ETOK_DEMO_DIR:-/tmp/etok-demo}"
mkdir -p "$out"
swift build -c release --product etok
etok="$(swift build -c release --show-bin-path)/etok"
clip=Samples/bikes.mp4

echo "== etok probe $clip"
"$etok" probe "$clip"
echo "== etok preview $clip -o $out/preview.mp4   (the frames the model sees)"
"$etok" preview "$clip" -o "$out/preview.mp4" -y
if "$etok" encode --help >/dev/null 2>&1; then
    echo "== etok encode $clip -o $out/bikes.etok"
    "$etok" encode "$clip" -o "$out/bikes.etok" -y --stats "$out/stats.json"
    echo "== etok decode $out/bikes.etok -o $out/bikes.decoded.mp4"
    "$etok" decode "$out/bikes.etok" -o "$out/bikes.decoded.mp4" -y
    echo "== etok info $out/bikes.etok"
    "$etok" info "$out/bikes.etok"
fi
echo "demo: outputs in $out"

#!/usr/bin/env bash
# Speed and memory of an official-size ElasticTok model with random weights of its exact shapes
# (BENCHMARKS.md "Official 200M FSQ config"; docs/official-models.md).
#
# usage: Tools/bench_official.sh ETOK_BIN [CONFIG.json] [WORKDIR]
#   ETOK_BIN     a release etok (swift build -c release --product etok)
#   CONFIG.json  default configs/ElasticTok-FSQ.json
#   WORKDIR      default /tmp/etok-official (needs ~2 GB: checkpoint + safetensors)
# Prints: the machine, `etok model bench` JSON at 0 and 3 blocks of context (one pass each after a
# warm-up) with its peak RSS, and `etok encode` of 8 frames at 256x256 (default search, 4-block
# chunks) with wall seconds per frame and peak RSS (GNU time). ETOK_EXTRA adds encode options.
set -euo pipefail
E=$1; CFG=${2:-$(dirname "$0")/../configs/ElasticTok-FSQ.json}; W=${3:-/tmp/etok-official}
mkdir -p "$W"
# etok-tools from this checkout, installed or not (README "Python tools")
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)/python${PYTHONPATH:+:$PYTHONPATH}"
echo "date: $(date -u +%FT%TZ)"; lscpu | grep -E "^(Model name|CPU\(s\)|Flags)" | sed 's/Flags:.*avx512_bf16.*/flags: avx512_bf16 present/;/^Flags/d'
"$E" model info 2>/dev/null | grep -i blas || true
if [ ! -f "$W/model.safetensors" ]; then
  python3 -m etok.tools make-random-official "$CFG" "$W/model.msgpack"
  python3 -m etok.tools convert "$W/model.msgpack" "$W/model.safetensors" --config "$CFG" > /dev/null
fi
/usr/bin/time -f "model bench: peak RSS %M KB, %e s wall, %P CPU" \
  "$E" model bench --model "$W/model.safetensors" --context 0,3 --repeats 1
if [ ! -f "$W/clip.mp4" ]; then
  ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=256x256:rate=24" -frames:v 8 -pix_fmt yuv420p "$W/clip.mp4"
fi
/usr/bin/time -f "encode 8 frames: peak RSS %M KB, %e s wall, %P CPU" \
  "$E" encode "$W/clip.mp4" --model "$W/model.safetensors" -o "$W/clip.etok" -y -q ${ETOK_EXTRA:-}

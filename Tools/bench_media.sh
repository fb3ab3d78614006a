#!/usr/bin/env bash
# Decode + preprocess throughput: `etok preview` (release build, frames written as raw RGB to
# /dev/null) against ffmpeg doing the same work (`scale` shortest side to 128, centre `crop`,
# RGB24, `-f null`), on the same clips in the same run. Runs alternate; medians of $RUNS runs.
# Prints a Markdown table with machine and date, for BENCHMARKS.md.
#
# Usage: Tools/bench_media.sh [clip ...]      (default: Samples/* and a generated 720p clip)
# Environment: RUNS (default 5), SIZE (model side, default 128), SCRATCH (build folder,
# default .build-bench), ETOK (use this binary instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SIZE=${SIZE:-128}
SCRATCH=${SCRATCH:-.build-bench}
command -v ffmpeg >/dev/null || { echo "bench_media: ffmpeg is not installed (Tools/bootstrap.sh)" >&2; exit 1; }

if [ -z "${ETOK:-}" ]; then
    swift build -c release --scratch-path "$SCRATCH" --product etok >&2
    ETOK="$SCRATCH/release/etok"
fi

work=$(mktemp -d /tmp/etok-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

clips=("$@")
if [ ${#clips[@]} -eq 0 ]; then
    for f in Samples/*.mp4 Samples/*.avi Samples/*.mkv; do [ -f "$f" ] && clips+=("$f"); done
    ffmpeg -v error -nostdin -f lavfi -i testsrc2=size=1280x720:rate=30 -frames:v 300 \
        -c:v libx264 -pix_fmt yuv420p "$work/testsrc2_720p.mp4"
    clips+=("$work/testsrc2_720p.mp4")
fi

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "## Media decode + preprocess: etok preview vs ffmpeg"
echo
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores; $(uname -sr)"
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $RUNS runs each, alternating, median wall time"
echo "- etok: \`etok preview X -q -y --format rgb -o /dev/null\` (--fit crop, ${SIZE}x${SIZE}, release build)"
echo "- ffmpeg $(ffmpeg -version | head -n1 | cut -d' ' -f3): \`ffmpeg -i X -vf scale=(shortest side ${SIZE}):flags=bicubic,crop=${SIZE}:${SIZE},format=rgb24 -f null -\`"
echo
echo "| clip | size | frames | etok s | ffmpeg s | etok fps | ffmpeg fps | etok / ffmpeg |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for clip in "${clips[@]}"; do
    frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$clip")
    size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$clip")
    filter="scale='if(gt(iw,ih),-2,$SIZE)':'if(gt(iw,ih),$SIZE,-2)':flags=bicubic,crop=$SIZE:$SIZE,format=rgb24"
    : > "$work/etok.t"; : > "$work/ffmpeg.t"
    for _ in $(seq "$RUNS"); do
        t0=$(now); "$ETOK" preview "$clip" -q -y --format rgb --model-size "${SIZE}x${SIZE}" -o /dev/null; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >> "$work/etok.t"
        t0=$(now); ffmpeg -v error -nostdin -i "$clip" -vf "$filter" -f null -; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >> "$work/ffmpeg.t"
    done
    e=$(median < "$work/etok.t"); f=$(median < "$work/ffmpeg.t")
    awk -v c="$(basename "$clip")" -v s="$size" -v n="$frames" -v e="$e" -v f="$f" \
        'BEGIN { printf "| %s | %s | %d | %.3f | %.3f | %.0f | %.0f | %.2f |\n", c, s, n, e, f, n / e, n / f, f / e }'
done
echo
echo "etok / ffmpeg is a throughput ratio (ffmpeg time / etok time): above 1 means etok is faster."

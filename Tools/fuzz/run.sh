#!/usr/bin/env bash
# Fuzzes the .etok readers with libFuzzer (docs/etok-format.md; not part of the test suite).
#
#   Tools/fuzz/run.sh [SECONDS] [libFuzzer options…]   build, then fuzz for SECONDS (default 60)
#   Tools/fuzz/run.sh --make-corpus                     regenerate Tools/fuzz/corpus/ (the seeds)
#
# Builds Sources/EtokFormat together with Tools/fuzz/FuzzReader.swift into one binary with
# `swiftc -sanitize=fuzzer,address`, in .build-fuzz/ (git-ignored). New interesting inputs go to
# .build-fuzz/corpus/, crashes to .build-fuzz/crash-*; the committed seeds are only read.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-fuzz
mkdir -p "$out/corpus"
sources=(Sources/EtokFormat/*.swift)

if [[ "${1:-}" == "--make-corpus" ]]; then
    swiftc -O -module-name EtokCorpus "${sources[@]}" Tools/fuzz/MakeCorpus.swift -o "$out/make-corpus"
    "$out/make-corpus" Tools/fuzz/corpus
    exit 0
fi

seconds="${1:-60}"
shift || true
swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name EtokFuzz \
    "${sources[@]}" Tools/fuzz/FuzzReader.swift -o "$out/etok-fuzz"
"$out/etok-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -dict=Tools/fuzz/etok.dict -artifact_prefix="$out/" -print_final_stats=1 "$@" \
    "$out/corpus" Tools/fuzz/corpus

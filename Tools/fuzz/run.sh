#!/usr/bin/env bash
# Fuzzes the .etok readers with libFuzzer (Tools/fuzz/README.md). The target is SwiftPM's
# `etok-fuzz-reader` (Tools/fuzz/EtokFuzzReader), built with the fuzzer and AddressSanitizer.
#
#   Tools/fuzz/run.sh [--seconds N] [libFuzzer options…]   build, then fuzz N seconds (default 60)
#   Tools/fuzz/run.sh --make-corpus                         regenerate Tools/fuzz/corpus/ (the seeds)
#
# The build goes to .build-fuzz/ (git-ignored, apart from the normal .build/). New interesting
# inputs go to .build-fuzz/corpus/, crashes to .build-fuzz/crash-*; the committed seeds are only
# read. Exit status: 0 when the run ended without a finding, libFuzzer's (non-zero) otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-fuzz

if [[ "${1:-}" == "--make-corpus" ]]; then
    swift build --product etok-fuzz-reader
    "$(swift build --show-bin-path)/etok-fuzz-reader" --make-corpus Tools/fuzz/corpus
    exit 0
fi

seconds=60
if [[ "${1:-}" == "--seconds" ]]; then
    [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "run.sh: --seconds needs a whole number" >&2; exit 64; }
    seconds="$2"
    shift 2
fi

# -sanitize=fuzzer instruments every module of the product (EtokFormat included) for coverage;
# ETOK_LIBFUZZER swaps the replay main for libFuzzer's driver (LibFuzzerMain.swift), which is
# declared with @_extern(c) (the Extern feature).
swift build -c release --build-path "$out" --product etok-fuzz-reader \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DETOK_LIBFUZZER \
    -Xswiftc -enable-experimental-feature -Xswiftc Extern
# Swift's crash backtracer reads the crashed process's memory in ways AddressSanitizer reports as a
# heap-buffer-overflow of its own, which hides the real finding: leave a crash to libFuzzer and ASan.
export SWIFT_BACKTRACE=enable=no
mkdir -p "$out/corpus"
"$out/release/etok-fuzz-reader" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -dict=Tools/fuzz/etok.dict -artifact_prefix="$out/" -print_final_stats=1 "$@" \
    "$out/corpus" Tools/fuzz/corpus

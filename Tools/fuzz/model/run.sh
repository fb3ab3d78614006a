#!/usr/bin/env bash
# Fuzzes the model-file checks with libFuzzer (Tools/fuzz/model/README.md; not part of the tests).
#
#   Tools/fuzz/model/run.sh [SECONDS] [libFuzzer options…]   build, then fuzz for SECONDS (default 60)
#   Tools/fuzz/model/run.sh --replay [FILE|FOLDER…]         plain build, run each input once
#                                                            (default: the seeds and what fuzzing found)
#   Tools/fuzz/model/run.sh --make-seeds                     regenerate Tools/fuzz/model/corpus/
#
# The fuzzing build is SwiftPM's, in its own scratch folder .build-fuzz-model/ (git-ignored) so it
# never mixes with the normal build: the etok-fuzz-model product with -sanitize=fuzzer,address.
# New interesting inputs go to .build-fuzz-model/corpus/, crashes to .build-fuzz-model/crash-*;
# the committed seeds are only read.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=.build-fuzz-model
seeds=Tools/fuzz/model/corpus
mkdir -p "$out/corpus"

case "${1:-}" in
--make-seeds)
    exec python3 Tools/fuzz/model/make_seeds.py "$seeds" ;;
--replay)
    shift
    swift build --product etok-fuzz-model
    if [[ $# -eq 0 ]]; then set -- "$seeds" "$out/corpus"; fi
    exec "$(swift build --show-bin-path)/etok-fuzz-model" "$@" ;;
esac

# Swift's crash backtracer reads the crashed process's memory in ways AddressSanitizer reports as a
# heap-buffer-overflow of its own, which hides the real finding: leave a crash to libFuzzer and ASan.
export SWIFT_BACKTRACE=enable=no
seconds="${1:-60}"
shift || true
swift build -c release --scratch-path "$out/build" -Xswiftc -sanitize=fuzzer,address --product etok-fuzz-model
"$out/build/release/etok-fuzz-model" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -dict=Tools/fuzz/model/model.dict -artifact_prefix="$out/" -print_final_stats=1 "$@" \
    "$out/corpus" "$seeds"

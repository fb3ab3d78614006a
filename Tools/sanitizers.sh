#!/usr/bin/env bash
# Builds and runs the Swift tests under AddressSanitizer and ThreadSanitizer (CI runs this after
# `make test`; about 10 minutes on 2 cores). Each sanitizer has its own build folder.
#   ASan: the whole suite, the CLI tests included (they run the ASan-built etok). Leak detection is
#         off: the Swift runtime and Foundation keep caches alive at exit, which LeakSanitizer
#         reports as leaks and turns into exit status 1 for every etok process. Peak-memory bounds
#         are skipped (ETOK_SANITIZER): ASan's quarantine makes RSS grow with all that was ever
#         allocated; the normal suite checks them.
#   TSan: the library suites, where the threads are (pipeline, tokenizer, format, model, tensor,
#         media). The CLI suites are left out: they time signals against running processes, and
#         TSan's 5-15x slowdown moves those timings (an interrupt arrives after the run ended).
# usage: Tools/sanitizers.sh [address|thread]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
kinds=("$@"); ((${#kinds[@]})) || kinds=(address thread)
for kind in "${kinds[@]}"; do
    scratch=".build-$kind"
    # The CLI tests read this: peak-memory bounds measure the sanitizer's allocator, not etok's.
    export ETOK_SANITIZER="$kind"
    echo "== sanitizer: $kind (build in $scratch)" >&2
    swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
    case "$kind" in
        address) ASAN_OPTIONS="detect_leaks=0:halt_on_error=1" \
                     swift test --skip-build --sanitize=address --scratch-path "$scratch" ;;
        thread)  TSAN_OPTIONS="halt_on_error=1" \
                     swift test --skip-build --sanitize=thread --scratch-path "$scratch" --skip EtokCLITests ;;
        *) echo "sanitizers.sh: unknown sanitizer '$kind' (address or thread)" >&2; exit 64 ;;
    esac
done

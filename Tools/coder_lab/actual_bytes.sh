#!/usr/bin/env bash
# Builds Tools/coder_lab/ActualBytes.swift with the EtokFormat sources and runs it on stream folders.
#   Tools/coder_lab/actual_bytes.sh DIR…
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .build-coder-lab
swiftc -O -parse-as-library -module-name EtokCoderLab Sources/EtokFormat/*.swift Tools/coder_lab/ActualBytes.swift \
    -o .build-coder-lab/actual-bytes
cd - > /dev/null
"$OLDPWD/.build-coder-lab/actual-bytes" "$@"

#!/bin/sh
# Instructions per uncontended try_acquire + release under callgrind, start-up excluded:
#   cargo build --release -p distlock-file --example overhead
#   scripts/overhead.sh [target/release/examples/overhead] [memory|file]
# Set DISTLOCK_OVERHEAD_SUBSCRIBER=1 to measure with a warnings-only tracing subscriber (as the CLI).
set -eu
BIN=${1:-target/release/examples/overhead}
for B in ${2:-memory file}; do
    run() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$B" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
    a=$(run 1000)
    b=$(run 11000)
    echo "$B: $(((b - a) / 10000)) instructions per try_acquire + release"
done

#!/bin/sh
# Instructions per uncontended try_acquire + release under callgrind, start-up excluded:
#   cargo build --release -p distlock-file --example overhead
#   scripts/overhead.sh [target/release/examples/overhead] [memory|file]
# Set DISTLOCK_OVERHEAD_SUBSCRIBER=1 to measure with a warnings-only tracing subscriber (as the CLI).
set -eu
BIN=${1:-target/release/examples/overhead}
for B in ${2:-memory file}; do
    run() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$B" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
    # A wide window: amortised growth (maps, buffers) lands at different cycle counts in
    # different builds and skews a narrow one by a few percent.
    a=$(run 1000)
    b=$(run 41000)
    echo "$B: $(((b - a) / 40000)) instructions per try_acquire + release"
done

#!/bin/sh
# Client instructions per uncontended try_acquire + release on a networked store, distlock
# beside the bench's raw loop, start-up excluded (windowed: N and M cycles, the difference):
#   cargo build --release -p distlock-cli --example overhead_net
#   scripts/overhead-net.sh redis://127.0.0.1:PORT/ ['mysql://root@127.0.0.1:PORT/distlock?fencing=off' …]
# Wall clock on a shared machine: `overhead_net paired URL N` alternates the two per cycle.
set -eu
BIN=${BIN:-target/release/examples/overhead_net}
for URL in "$@"; do
    for W in distlock raw; do
        run() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$W" "$URL" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
        a=$(run 500)
        b=$(run 4500)
        echo "$URL $W: $(((b - a) / 4000)) instructions per try_acquire + release"
    done
done

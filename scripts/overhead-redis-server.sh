#!/bin/bash
# Server instructions per uncontended try_acquire + release on Redis, distlock beside the
# bench's raw loop: a redis-server of its own under callgrind on a free loopback port, N
# and M cycles of `overhead_net`, the difference (start-up excluded). Repeatable where wall
# time on a shared machine is not.
#   cargo build --release -p distlock-cli --example overhead_net
#   scripts/overhead-redis-server.sh
set -euo pipefail
BIN=${BIN:-target/release/examples/overhead_net}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Total server instructions for `overhead_net $1` running $2 cycles.
run() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$out/log" 2>&1 &
    local server=$!
    for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    "$BIN" "$1" "redis://127.0.0.1:$port/" "$2" >/dev/null 2>&1
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$server" || true
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log"
}
for W in distlock raw; do
    a=$(run "$W" 1000)
    b=$(run "$W" 3000)
    echo "redis-server, $W: $(((b - a) / 2000)) instructions per try_acquire + release"
done

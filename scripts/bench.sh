#!/usr/bin/env bash
# Runs `distlock bench` (release build) on a throwaway server that testkit starts on a free
# loopback port (data under target/testkit/), and stops the server after.
#
#   scripts/bench.sh redis|zookeeper|mariadb|mariadb-row|file|memory [distlock bench options…]
#   (mariadb-off and mariadb-row-off: the same with `fencing=off`)
#   scripts/bench.sh redis --json target/bench-redis.json --svg target/bench-redis.svg
#   scripts/bench.sh file --quick
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-}
[ $# -gt 0 ] && shift
cargo build --release --quiet -p distlock-cli
bench=target/release/distlock

case "$kind" in
  memory) exec "$bench" bench --url memory:// "$@" ;;
  file)
    mkdir -p target/bench-locks
    exec "$bench" bench --url "file://$PWD/target/bench-locks" "$@" ;;
  redis | zookeeper | mariadb) server=$kind; query= ;;
  mariadb-row) server=mariadb; query='?mode=row_lock' ;;
  mariadb-off) server=mariadb; query='?fencing=off' ;;
  mariadb-row-off) server=mariadb; query='?mode=row_lock&fencing=off' ;;
  *) echo "usage: $0 redis|zookeeper|mariadb|mariadb-row|mariadb-off|mariadb-row-off|file|memory [bench options...]" >&2; exit 2 ;;
esac

cargo build --release --quiet -p distlock-testkit --example serve
# The server lives as long as `serve` does, and `serve` until its stdin (our pipe) closes:
# when this script ends, however it ends, the server goes.
coproc SERVER { exec target/release/examples/serve "$server"; }
read -r url <&"${SERVER[0]}" || { echo "the $server test server did not start" >&2; exit 1; }
"$bench" bench --url "$url$query" "$@"

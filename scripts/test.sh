#!/usr/bin/env bash
# Runs every check and test of distlock on a fresh Debian/Ubuntu machine:
# installs the throwaway test servers' packages if they are missing (as root or with sudo),
# then fmt, clippy, docs, all tests, the fault campaign (`distlock check --quick`), the demo,
# and a check that no test server survived.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

missing=()
[ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null 2>&1; } || missing+=(mariadb-server)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing test servers: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo); else
    echo "distlock tests need: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y redis-server mariadb-server zookeeper" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p distlock-cli --all-targets --features testkit -- -D warnings

step "the facade with each backend feature alone and with none; distlock-redis with tls"
# `cargo test --workspace` builds the facade with every feature (the CLI enables them), so
# the "feature not enabled" arms and the tls arm are only compiled here.
for features in "" redis zookeeper mysql; do
  cargo check --quiet -p distlock --no-default-features ${features:+--features "$features"}
done
cargo check --quiet -p distlock-redis --features tls

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
rm -rf target/testkit  # scratch dirs of earlier runs
mkdir -p target
if ! cargo test --workspace 2>&1 | tee target/test-output.log; then
  # Server log tails and backtraces can bury the reasons: repeat them last.
  step "why the tests failed"
  grep -a -A3 "panicked at" target/test-output.log | grep -av "^note: run with" | head -80 || true
  exit 1
fi

step "distlock check --quick (a fault campaign on every backend, throwaway servers)"
# Fails the run on any unexplained overlap, out-of-order fenced write, silent loss or hold
# left behind; see docs/RELIABILITY.md.
cargo run --quiet -p distlock-cli --features testkit -- check --quick

step "the demo (README's first command)"
demo_json=$(cargo run --quiet -p distlock-cli -- demo --json)
echo "$demo_json"
# Act 2 must have sold exactly the stock (the demo's exit code says so too).
case "$demo_json" in
  *'"stock":1,'*'"with_lock":{"sold":1,'*) ;;
  *) echo "the demo did not sell exactly the stock with the lock" >&2; exit 1 ;;
esac

step "distlock bench --quick on file:// and memory:// (so it cannot rot; no timing checked)"
bench_dir=$(mktemp -d)
cargo run --quiet -p distlock-cli -- bench --quick --url "file://$bench_dir" \
  --json target/bench-file.json --svg target/bench-file.svg
cargo run --quiet -p distlock-cli -- bench --quick --url memory:// --json target/bench-memory.json
rmdir "$bench_dir"  # fails if the bench left anything behind

step "no test server outlived the tests"
# Scans /proc itself: pgrep (procps) is missing on minimal Debian images, and a missing
# pgrep would make this check pass without looking.
left=0
for cmdline in /proc/[0-9]*/cmdline; do
  args=$(tr '\0' ' ' 2>/dev/null <"$cmdline") || continue
  case "$args" in
    *"$PWD"/*target/testkit*)
      pid=${cmdline#/proc/}
      echo "left-over test server: pid ${pid%/cmdline}: $args" >&2
      left=1
      ;;
  esac
done
[ "$left" = 0 ] || exit 1
echo "none"

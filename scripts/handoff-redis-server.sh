#!/bin/bash
# Server time of each script call in `handoff_push` rounds (distlock's handoffs beside a
# bare DEL + PUBLISH push): a throwaway redis-server from testkit with SLOWLOG recording
# every command, then each EVALSHA with the commands it ran (SLOWLOG lists a script's
# commands just before the script), medians per kind of call, in µs.
#   cargo build --release -p distlock-cli --example handoff_push -p distlock-testkit --example serve
#   scripts/handoff-redis-server.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
coproc SERVER { exec target/release/examples/serve redis; }
read -r url <&"${SERVER[0]}"
port=${url##*:}
port=${port%%/*}
redis-cli -p "$port" config set slowlog-log-slower-than 0 >/dev/null
redis-cli -p "$port" config set slowlog-max-len 1000000 >/dev/null
target/release/examples/handoff_push "$url" "${1:-60}"
python3 - "$port" <<'PY'
import collections, socket, statistics, sys

def command(port, *args):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    f = s.makefile("rb")
    def read():
        line = f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"*":
            return [read() for _ in range(int(rest))] if int(rest) >= 0 else None
        if kind == b"$":
            return f.read(int(rest) + 2)[:-2] if int(rest) >= 0 else None
        return int(rest) if kind == b":" else rest
    return read()

# An entry: id, time, µs, the command's arguments, the client's address (`?:0` inside a script), name.
entries = sorted(command(int(sys.argv[1]), b"SLOWLOG", b"GET", b"1000000"), key=lambda e: e[0])
inner, calls = [], collections.defaultdict(list)
for _, _, us, args, addr, *_ in entries:
    name = args[0].decode().upper()
    if name == "EVALSHA":
        kind = f"{args[1].decode()[:8]} {','.join(n for n, _ in inner)}"
        calls[kind].append((us, sum(u for _, u in inner)))
        inner = []
    elif addr.startswith(b"?"):
        inner.append((name, us))
    else:
        inner = []
for kind, v in sorted(calls.items(), key=lambda kv: -len(kv[1])):
    if len(v) > 2:
        print(f"{len(v):5d} calls: script {statistics.median(t for t, _ in v):6.1f} µs, "
              f"its commands {statistics.median(c for _, c in v):5.1f} µs: {kind}")
PY

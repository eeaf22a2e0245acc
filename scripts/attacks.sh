#!/usr/bin/env bash
# Issue 35's attacks against a release scimd on this machine, measured (scripts/attacks.py):
# memory, another tenant's latency, survival. Loopback is allowed outbound here so the
# hostile target (on this machine) can be reached: the byte cap is what is measured.
set -euo pipefail
bin=${BIN:-$PWD/target/release/scimd}
[ -x "$bin" ] || cargo build --release -p scimd
work=$(mktemp -d); port=$((20000 + RANDOM % 20000)); mport=$((port + 1))
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n 8192 2>/dev/null || true
(cd "$work" && SCIMD_OUTBOUND_ALLOW_LOOPBACK=true exec "$bin" serve --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$mport" --bootstrap-token-file "$work/bootstrap.token" >serve.log 2>&1) &
server=$!
for _ in $(seq 100); do grep -q "Listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
python3 scripts/attacks.py "$port" "$mport" "$server" "$work" "$bin"

#!/usr/bin/env bash
# The engine's benchmark (docs/sync.md §9): a synthetic directory of USERS users and NGROUPS
# groups (avg MEMBERS members) from CSV into a scimd tenant on SQLite on this machine — the
# engine and the target sharing the cores, each on its own database file. Prints, for the
# initial cycle, a 1 % incremental cycle and a no-change cycle: wall time, requests sent,
# objects/s and the engine's peak RSS.
#   USERS=100000 NGROUPS=1000 MEMBERS=50 scripts/sync-bench.sh
# PEER=scim2-server measures into the PyPI scim2-server instead of a scimd tenant.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}; NGROUPS=${NGROUPS:-1000}; MEMBERS=${MEMBERS:-50}; IN_FLIGHT=${IN_FLIGHT:-16}
# BIN=path measures another build (an older commit, a variant) in the same sitting.
bin=${BIN:-$PWD/target/release/scimd}
[ -x "$bin" ] || cargo build --release -p scimd
if [ "${PEER:-}" = scim2-server ]; then
  # The PyPI peer (in memory, Python) as the target instead of scimd: scripts/test.sh
  # installs it under target/peer-venv.
  peer_bin=${PEER_BIN:-$PWD/target/peer-venv/bin/scim2-server}
  work=$(mktemp -d); port=$((20000 + RANDOM % 20000)); token="bench-secret"
  "$peer_bin" --port "$port" --bearer-token "$token" >"$work/peer.log" 2>&1 &
  server=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$url/ServiceProviderConfig" >/dev/null 2>&1 && break; sleep 0.2; done
else
  . scripts/serve-fresh.sh
fi
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
# The target listens on this machine: allow loopback for the engine (docs/security.md).
export SCIMD_DATABASE_URL="sqlite://$work/engine.db" APP_TOKEN="$token" SCIMD_OUTBOUND_ALLOW_LOOPBACK=true
cat >"$work/job.toml" <<JOB
name = "bench"
[source]
kind = "csv"
path = "people.csv"
id = "employee_id"
groups = "groups"
[target]
url = "$url"
token_env = "APP_TOKEN"
max_in_flight = $IN_FLIGHT
rate_limit = 0
JOB
measure() { # label
  local out
  out=$( { /usr/bin/time -f 'RSS_KB %M CPU %U+%S' "$bin" --json sync run "$work/job.toml" >"$work/run.json"; } 2>&1 )
  python3 - "$1" "$work/run.json" "$(echo "$out" | awk '/RSS_KB/ {print $2}')" "$(echo "$out" | awk '/RSS_KB/ {print $4}')" <<'PY'
import json, sys
label, path, rss, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3] or 0), sys.argv[4]
r = json.load(open(path))
secs = r["duration_ms"] / 1000
objs = sum(r["counts"]["actions"].values())
print(f"{label:<22} {secs:8.2f} s  {r['counts']['requests']:>8} requests  {objs:>8} objects  "
      f"{(objs / secs if secs else 0):>9.0f} objects/s  peak RSS {rss / 1024:6.0f} MiB  engine CPU {cpu} s  {r['status']}")
PY
}
echo "target: ${PEER:-scimd (SQLite)}; directory: $USERS users, $NGROUPS groups, avg $MEMBERS members; max_in_flight $IN_FLIGHT; $(nproc) cores"
"$bin" sync generate --users "$USERS" --groups "$NGROUPS" --members "$MEMBERS" --out "$work/people.csv" >/dev/null
measure "initial cycle"
"$bin" sync generate --users "$USERS" --groups "$NGROUPS" --members "$MEMBERS" --variant 1 --out "$work/people.csv" >/dev/null
measure "1 % changed"
measure "no change"

#!/usr/bin/env bash
# Server CPU time per answered request, measured from outside with wrk (Debian's package) —
# the yardstick of issue 33: the generator's share of the cores does not count, only the
# user + system time of the server process (and of PostgreSQL's processes on that backend,
# scripts/cpu-ticks.py) over the requests it answered. One run against scimd on SQLite, on
# PostgreSQL, the SCIMMY peer (in memory, on express; a fresh process per workload, so its
# linear scans see only that workload's users), and the bare `/healthz` route.
#
# Usage: scripts/bench-wrk.sh [seconds] [connections]   (default 10 s, 16 connections, 2 threads)
#   BACKENDS="sqlite postgres" or one; PEER=0 skips the peer; BIN=path measures another build.
# Requests: POST /Users (an Entra-shaped user with the enterprise extension), GET /Users with
# `filter=userName eq` over 500 seeded users, PATCH /Users/{id} replacing two attributes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conns="${2:-16}"; backends="${BACKENDS:-sqlite postgres}"
bin="${BIN:-$PWD/target/release/scimd}"
[ -n "${BIN:-}" ] || cargo build --release -q -p scimd
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
out=$(mktemp -d); pids=(); dbs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for d in "${dbs[@]}"; do psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres || true; done
  rm -rf "$out"
}
trap cleanup EXIT
export WRK_USERS=500 WRK_IDS="$out/ids"
echo "# $(date -u +%FT%TZ) wrk ${secs}s, $conns connections, 2 threads; $(nproc) cores shared with the generator"

# seed URL TOKEN: 500 users seed-0 … seed-499; their ids in $WRK_IDS.
seed() {
  python3 - "$1" "$2" "$WRK_IDS" <<'PY'
import json, sys, urllib.request
url, token, ids = sys.argv[1:]
out = []
for i in range(500):
    body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": f"seed-{i}@example.com", "active": True,
                       "displayName": f"Seed {i}", "title": "Seed"}).encode()
    req = urllib.request.Request(url + "/Users", data=body, method="POST", headers={
        "Content-Type": "application/scim+json", "Authorization": f"Bearer {token}"})
    out.append(json.load(urllib.request.urlopen(req))["id"])
open(ids, "w").write("\n".join(out) + "\n")
PY
}

# run TARGET NAME URL TOKEN SCRIPT PIDSPEC: one wrk run; prints and keeps µs/request.
run() {
  local target=$1 name=$2 url=$3 token=$4 script=$5; shift 5
  local before after
  before=$(python3 scripts/cpu-ticks.py "$@")
  WRK_TOKEN="$token" wrk -t2 -c"$conns" -d"${secs}s" -s "scripts/wrk/$script.lua" "$url" >"$out/$target.$name.wrk"
  after=$(python3 scripts/cpu-ticks.py "$@")
  python3 - "$target" "$name" "$out/$target.$name.wrk" "$1" "$before" "$after" "$out/results" <<'PY'
import os, re, sys
t, n, f, server, before, after, results = sys.argv[1:]
text = open(f).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
ok = total - bad
tick = os.sysconf("SC_CLK_TCK")
b = dict(x.split(":") for x in before.split())
a = dict(x.split(":") for x in after.split())
d = {p: int(v) - int(b.get(p, 0)) for p, v in a.items()}
us = lambda ticks: ticks * 1e6 / tick / ok if ok else float("nan")
srv, db = us(d.get(server, 0)), us(sum(v for p, v in d.items() if p != server))
secs = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
open(results, "a").write(f"{t} {n} {srv + db:.1f} {srv:.1f} {db:.1f} {secs:.0f} {bad}\n")
extra = f" ({srv:.0f} + {db:.0f} in PostgreSQL)" if db else ""
failed = f", {bad} refused" if bad else ""
print(f"{t:8} {n:8} {secs:9.0f} req/s  CPU {srv + db:7.1f} µs/request{extra}{failed}")
PY
}

for backend in $backends; do
  args=(); pg=()
  if [ "$backend" = postgres ]; then
    db="scimd_wrk_$$"; dbs+=("$db"); pg=(--postgres)
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
    args=(--database-url "postgres://postgres@127.0.0.1:5432/$db")
  fi
  dir="$out/$backend"; mkdir -p "$dir"; port=$((20000 + RANDOM % 20000))
  (cd "$dir" && exec "$bin" serve --listen "127.0.0.1:$port" "${args[@]}" >serve.log 2>&1) &
  pids+=($!); server=$!
  for _ in $(seq 100); do grep -q "Listening on" "$dir/serve.log" 2>/dev/null && break; sleep 0.2; done
  token=$(awk '/^Secret:/ {print $2}' "$dir/serve.log")
  url="http://127.0.0.1:$port/t/default/scim/v2"
  seed "$url" "$token"
  run "$backend" healthz "http://127.0.0.1:$port" "" healthz "$server" "${pg[@]}"
  run "$backend" create "$url" "$token" create "$server" "${pg[@]}"
  run "$backend" lookup "$url" "$token" lookup "$server" "${pg[@]}"
  run "$backend" patch "$url" "$token" patch "$server" "${pg[@]}"
done

host="$PWD/target/peer-scimmy/host.cjs"
if [ "${PEER:-1}" != 0 ] && [ -f "$host" ] && command -v node >/dev/null; then
  for w in create lookup patch; do
    port=$((20000 + RANDOM % 20000))
    node "$host" "$port" benchtoken >"$out/scimmy.log" 2>&1 &
    pids+=($!); server=$!
    for _ in $(seq 50); do grep -q "listening" "$out/scimmy.log" 2>/dev/null && break; sleep 0.2; done
    seed "http://127.0.0.1:$port/scim" benchtoken
    run scimmy "$w" "http://127.0.0.1:$port/scim" benchtoken "$w" "$server"
    kill "$server"; wait "$server" 2>/dev/null || true
  done
elif [ "${PEER:-1}" != 0 ]; then
  echo "# the SCIMMY peer is not installed (bash scripts/test.sh installs it): no peer column"
fi

python3 - "$out/results" $backends <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    t, n, total, srv, db, rate, bad = line.split()
    rows[(t, n)] = (float(total), float(srv), float(db), int(bad))
backends = sys.argv[2:]
peer = any(t == "scimmy" for t, _ in rows)
print()
print("| CPU µs per request | " + " | ".join(backends) + (" | SCIMMY | " + " | ".join(f"SCIMMY ÷ {b}" for b in backends) if peer else "") + " |")
print("|---|" + "---:|" * (len(backends) * (2 if peer else 1) + (1 if peer else 0)))
for n in ["create", "lookup", "patch", "healthz"]:
    cells = []
    for b in backends:
        r = rows.get((b, n))
        cells.append("—" if not r else (f"{r[0]:.0f} ({r[1]:.0f} + {r[2]:.0f} db)" if r[2] else f"{r[0]:.0f}"))
    if peer:
        p = rows.get(("scimmy", n))
        cells.append("—" if not p else (f"{p[0]:.0f} ({p[3]} refused)" if p[3] else f"{p[0]:.0f}"))
        for b in backends:
            r = rows.get((b, n))
            cells.append(f"{p[0] / r[0]:.1f}×" if p and r and not p[3] else "—")
    print(f"| {n} | " + " | ".join(cells) + " |")
PY

#!/usr/bin/env bash
# The performance table of docs/performance.md in one run: every workload of `scimd bench`
# against a fresh release-build scimd on SQLite and on PostgreSQL, the bare-route ceiling
# (`GET /healthz`, no token and no database) measured in the same run, and the same creates,
# lookups and PATCHes against the SCIMMY peer (in-memory, on express) when its host is
# installed (`scripts/test.sh` installs it under target/peer-scimmy). Each run also gives the
# server's CPU time per answered request (user + system from /proc, PostgreSQL's processes
# included on that backend; scripts/cpu-ticks.py): the cost of a request whatever share of
# the cores the load generator takes.
#
# Usage: scripts/bench.sh [seconds] [concurrency]
#   BACKENDS="sqlite postgres" (the default) or one of them; PEER=0 skips the peer;
#   BIN=path measures another build (an older commit, a variant) in the same sitting;
#   WORKLOADS="create-users lookup" runs only those rows of the table (the ceiling always
#   runs; the names are the first column of the table).
# Prints each run as it ends, then the summary table. PostgreSQL is the local server
# (postgres://postgres@127.0.0.1:5432) with its default durability.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conc="${2:-16}"; backends="${BACKENDS:-sqlite postgres}"
bin="${BIN:-$PWD/target/release/scimd}"
[ -n "${BIN:-}" ] || cargo build --release -q -p scimd
out=$(mktemp -d); pids=(); dbs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for d in "${dbs[@]}"; do psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres || true; done
  rm -rf "$out"
}
trap cleanup EXIT
echo "# $(date -u +%FT%TZ) concurrency=$conc duration=${secs}s $(nproc) cores, generator on the same cores"

# bench TARGET URL TOKEN NAME ARGS...: one run, its JSON kept as $out/TARGET.NAME.json
# (skipped when WORKLOADS is set and does not name it).
bench() {
  local target=$1 url=$2 token=$3 name=$4; shift 4
  case "$name" in ceiling*) ;; *)
    [ -z "${WORKLOADS:-}" ] || [[ " $WORKLOADS " == *" $name "* ]] || return 0 ;;
  esac
  local before after
  # The server's CPU time around the run (PostgreSQL's processes too on that backend): the
  # generator's own share of the cores is not in it.
  before=$(python3 scripts/cpu-ticks.py $server_pid $cpu_pg)
  "$bin" --json bench --url "$url" --token "$token" --duration "${secs}s" --concurrency "$conc" "$@" \
    >"$out/$target.$name.json"
  after=$(python3 scripts/cpu-ticks.py $server_pid $cpu_pg)
  python3 - "$target" "$name" "$out/$target.$name.json" "$server_pid" "$before" "$after" <<'EOF'
import json, os, sys
t, n, f, server, before, after = sys.argv[1:]
r = json.load(open(f))
tick = os.sysconf("SC_CLK_TCK")
b = dict(x.split(":") for x in before.split())
a = dict(x.split(":") for x in after.split())
delta = {p: int(v) - int(b.get(p, 0)) for p, v in a.items()}
answered = r["requests"] - sum(sum(k["errors"].values()) for k in r["kinds"])
per = lambda ticks: ticks * 1e6 / tick / max(answered, 1)
cpu = {"server_us": per(delta.get(server, 0)),
       "db_us": per(sum(v for p, v in delta.items() if p != server))}
r["cpu"] = cpu
json.dump(r, open(f, "w"))
kinds = ", ".join(f"{k['kind']} p50 {k['p50_ms']:.2f} p99 {k['p99_ms']:.2f} ms"
                  + (f" errors {k['errors']}" if k['errors'] else "") for k in r["kinds"])
db = f" + {cpu['db_us']:.0f} in PostgreSQL" if cpu["db_us"] else ""
print(f"{t:9} {n:22} {r['per_second']:9.0f} req/s  CPU {cpu['server_us']:.0f} µs/req{db}  ({kinds})")
EOF
}

# start_scimd NAME [--database-url URL]: a fresh scimd in its own directory; sets $port and
# $token. (Not in a subshell: the server's pid must reach the cleanup.)
start_scimd() {
  local dir="$out/$1"; shift
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$dir"
  (cd "$dir" && exec "$bin" serve --listen "127.0.0.1:$port" "$@" >serve.log 2>&1) &
  pids+=($!); server_pid=$!
  for _ in $(seq 100); do grep -q "Listening on" "$dir/serve.log" 2>/dev/null && break; sleep 0.2; done
  token=$(awk '/^Secret:/ {print $2}' "$dir/serve.log")
}

for backend in $backends; do
  args=(); cpu_pg=""
  if [ "$backend" = postgres ]; then
    cpu_pg=--postgres
    db="scimd_bench_$$"; dbs+=("$db")
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
    args=(--database-url "postgres://postgres@127.0.0.1:5432/$db")
  fi
  start_scimd "$backend" "${args[@]}"
  url="http://127.0.0.1:$port/t/default/scim/v2"
  bench "$backend" "$url" "$token" ceiling --workload ceiling
  bench "$backend" "$url" "$token" create-users --workload create-users
  # A young table: lookups right after the users were created, before any statistics.
  bench "$backend" "$url" "$token" lookup --workload lookup --users 2000
  bench "$backend" "$url" "$token" patch-users --workload patch-users --users 2000
  for size in 1000 100000; do
    bench "$backend" "$url" "$token" "group-members-$size" --workload group-members --group-size "$size"
  done
  bench "$backend" "$url" "$token" list --workload list --users 2000
  bench "$backend" "$url" "$token" idp-cycle --workload idp-cycle --users 2000
  bench "$backend" "$url" "$token" ceiling-after --workload ceiling
done

host="$PWD/target/peer-scimmy/host.cjs"
if [ "${PEER:-1}" != 0 ] && [ -f "$host" ] && command -v node >/dev/null; then
  port=$((20000 + RANDOM % 20000))
  node "$host" "$port" benchtoken >"$out/scimmy.log" 2>&1 &
  pids+=($!); server_pid=$!; cpu_pg=""
  for _ in $(seq 50); do grep -q "listening" "$out/scimmy.log" 2>/dev/null && break; sleep 0.2; done
  url="http://127.0.0.1:$port/scim"
  bench scimmy "$url" benchtoken create-users --workload create-users
  bench scimmy "$url" benchtoken lookup --workload lookup --users 2000
  bench scimmy "$url" benchtoken patch-users --workload patch-users --users 2000
else
  echo "# the SCIMMY peer is not installed (bash scripts/test.sh installs it): no peer column"
fi

python3 - "$out" $backends <<'EOF'
import json, os, sys
out, backends = sys.argv[1], sys.argv[2:]
def load(t, n):
    f = os.path.join(out, f"{t}.{n}.json")
    return json.load(open(f)) if os.path.exists(f) else None
def p99(r):
    return max(k["p99_ms"] for k in r["kinds"]) if r and r["kinds"] else float("nan")
def failed(r):
    return sum(sum(k["errors"].values()) for k in r["kinds"])
def ok_rate(r):
    """Answered requests per second, without the ones that failed (4xx/5xx, transport)."""
    return (r["requests"] - failed(r)) / r["elapsed_seconds"]
rows = ["create-users", "lookup", "patch-users", "group-members-1000", "group-members-100000",
        "list", "idp-cycle"]
head = "| workload |"
rule = "|---|"
for b in backends:
    head += f" {b} req/s | p99 ms | of ceiling |"
    rule += "---:|---:|---:|"
    if load("scimmy", "create-users"):
        head += " × SCIMMY |"
        rule += "---:|"
if load("scimmy", "create-users"):
    head += " SCIMMY req/s | p99 ms |"
    rule += "---:|---:|"
print()
print(head)
print(rule)
for n in ["ceiling"] + rows:
    line = f"| {n} |"
    for b in backends:
        r = load(b, n)
        ceil = [c["per_second"] for c in (load(b, "ceiling"), load(b, "ceiling-after")) if c]
        ceil = max(ceil) if ceil else None
        if r:
            frac = f"{100 * ok_rate(r) / ceil:.0f} %" if ceil else "—"
            bad = f" ({failed(r):,} failed)" if failed(r) else ""
            line += f" {ok_rate(r):,.0f}{bad} | {p99(r):.1f} | {frac} |"
        else:
            line += " — | — | — |"
        if load("scimmy", "create-users"):
            peer = load("scimmy", n)
            if r and peer and not failed(peer):
                line += f" {ok_rate(r) / ok_rate(peer):.1f}× |"
            else:
                line += " — |"
    if load("scimmy", "create-users"):
        peer = load("scimmy", n)
        if peer and failed(peer):
            line += f" {ok_rate(peer):,.0f} ({failed(peer):,} failed) | {p99(peer):.1f} |"
        elif peer:
            line += f" {ok_rate(peer):,.0f} | {p99(peer):.1f} |"
        else:
            line += " — | — |"
    print(line)
print()
# Server CPU per answered request: what a request costs, whatever the generator takes.
def cpu(r):
    return r["cpu"]["server_us"] + r["cpu"]["db_us"] if r and "cpu" in r else None
peer_on = load("scimmy", "create-users") is not None
head = "| CPU µs per request |" + "".join(f" {b} |" for b in backends)
rule = "|---|" + "---:|" * len(backends)
if peer_on:
    head += " SCIMMY |" + "".join(f" SCIMMY ÷ {b} |" for b in backends)
    rule += "---:|" * (1 + len(backends))
print(head)
print(rule)
for n in ["ceiling"] + rows:
    line = f"| {n} |"
    for b in backends:
        r = load(b, n)
        c = cpu(r)
        if c is None:
            line += " — |"
        elif r["cpu"]["db_us"]:
            line += f" {c:,.0f} ({r['cpu']['server_us']:,.0f} + {r['cpu']['db_us']:,.0f} db) |"
        else:
            line += f" {c:,.0f} |"
    if peer_on:
        p = cpu(load("scimmy", n))
        line += f" {p:,.0f} |" if p else " — |"
        for b in backends:
            c = cpu(load(b, n))
            line += f" {p / c:.1f}× |" if p and c else " — |"
    print(line)
print()
print("ceiling: GET /healthz, the most this HTTP stack answers here under the same load "
      "(the higher of the runs before and after the workloads); group-members: one add and "
      "one remove per iteration, p99 of either; req/s count answered requests only, and a "
      "peer that refused requests (SCIMMY answers 400 to the Entra-style PATCH with a "
      "filtered path) gets no ratio.")
EOF

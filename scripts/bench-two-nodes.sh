#!/usr/bin/env bash
# One scimd node against two on one PostgreSQL (docs/scaling.md): the same total
# concurrency, split over two nodes, for creates, lookups and the IdP cycle.
# Usage: scripts/bench-two-nodes.sh [seconds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conc="${2:-16}"; half=$((conc / 2))
bin="${BIN:-$PWD/target/release/scimd}"
[ -n "${BIN:-}" ] || cargo build --release -q -p scimd
out=$(mktemp -d); pids=(); db="scimd_nodes_$$"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres || true
  rm -rf "$out"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
url_db="postgres://postgres@127.0.0.1:5432/$db"
start() { # NAME PORT
  mkdir -p "$out/$1"
  (cd "$out/$1" && exec "$bin" serve --listen "127.0.0.1:$2" --database-url "$url_db" >serve.log 2>&1) &
  pids+=($!)
  for _ in $(seq 100); do grep -q "Listening on" "$out/$1/serve.log" 2>/dev/null && break; sleep 0.2; done
}
pa=$((20000 + RANDOM % 10000)); pb=$((pa + 1))
start a "$pa"
token=$(awk '/^Secret:/ {print $2}' "$out/a/serve.log")
start b "$pb"
echo "# $(date -u +%FT%TZ) $(nproc) cores; PostgreSQL, both nodes and the generators share them"
rate() { python3 -c 'import json,sys; print(round(sum(json.load(open(f))["per_second"] for f in sys.argv[1:])))' "$@"; }
run() { # PORT CONCURRENCY FILE ARGS...
  local port=$1 c=$2 f=$3; shift 3
  "$bin" --json bench --url "http://127.0.0.1:$port/t/default/scim/v2" --token "$token" \
    --duration "${secs}s" --concurrency "$c" "$@" >"$f"
}
for w in "create-users" "lookup --users 2000" "idp-cycle --users 2000"; do
  # shellcheck disable=SC2086
  run "$pa" "$conc" "$out/one.json" --workload $w
  # shellcheck disable=SC2086
  run "$pa" "$half" "$out/two-a.json" --workload $w & ga=$!
  # shellcheck disable=SC2086
  run "$pb" "$half" "$out/two-b.json" --workload $w & gb=$!
  wait "$ga" "$gb"
  echo "${w%% *}: one node (c=$conc) $(rate "$out/one.json") req/s; two nodes (c=$half each) $(rate "$out/two-a.json" "$out/two-b.json") req/s"
done

#!/usr/bin/env bash
# Measures every workload of `scimd bench` against a fresh release-build scimd, on SQLite
# (default) or PostgreSQL (BACKEND=postgres). Usage: scripts/bench.sh [seconds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conc="${2:-16}"; backend="${BACKEND:-sqlite}"
# BIN=path measures another build (an older commit, a variant) in the same sitting.
bin="${BIN:-$PWD/target/release/scimd}"
[ -n "${BIN:-}" ] || cargo build --release -q -p scimd
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
db_args=()
if [ "$backend" = postgres ]; then
  db="scimd_bench_$$"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
  db_args=(--database-url "postgres://postgres@127.0.0.1:5432/$db")
fi
(cd "$work" && exec "$bin" serve --listen "127.0.0.1:$port" "${db_args[@]}" >serve.log 2>&1) &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; [ "$backend" = postgres ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "Listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
token=$(awk '/^Secret:/ {print $2}' "$work/serve.log")
url="http://127.0.0.1:$port/t/default/scim/v2"
echo "# $(date -u +%FT%TZ) backend=$backend concurrency=$conc duration=${secs}s $(nproc) cores"
run() { "$bin" bench --url "$url" --token "$token" --duration "${secs}s" --concurrency "$conc" "$@"; }
run --workload create-users
run --workload lookup --users 5000
[ "$backend" = postgres ] && psql -h 127.0.0.1 -U postgres -qc "ANALYZE" "$db"
run --workload lookup --users 1000
run --workload patch-users --users 2000
for size in 10 1000 10000; do run --workload group-members --group-size "$size"; done
run --workload list --users 2000
run --workload idp-cycle --users 2000

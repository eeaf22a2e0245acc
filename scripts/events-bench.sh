#!/usr/bin/env bash
# The cost of the change feed and of webhook delivery on SCIM writes (issue 15): the same
# `scimd bench` workloads, same machine, same sitting, against a fresh release scimd on
# SQLite (BACKEND=postgres for PostgreSQL) in three set-ups:
#   log-off   SCIMD_PROVISIONING_LOG=false (no provisioning log, so no feed: the floor)
#   feed      the default (every change logged with its events)
#   webhooks  the default plus two webhook endpoints, each to a receiver that verifies the
#             signature (examples/webhook_receiver.py), delivering while the bench writes
# Afterwards it waits for both endpoints to catch up and prints how long that took.
# BASELINE_BIN=path/to/an/older/scimd adds a fourth set-up, `baseline`: that binary with its
# defaults (e.g. one built from the commit before the change feed, to see the feed's own cost).
# Usage: scripts/events-bench.sh [seconds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conc="${2:-16}"; backend="${BACKEND:-sqlite}"
cargo build --release -q -p scimd
main_bin="$PWD/target/release/scimd"
echo "# $(date -u +%FT%TZ) backend=$backend concurrency=$conc duration=${secs}s $(nproc) cores"

one() { # label, extra env...
  local label=$1; shift
  local bin=$main_bin
  [ "$label" = baseline ] && bin=$BASELINE_BIN
  local work; work=$(mktemp -d); local port=$((20000 + RANDOM % 20000))
  local db_args=() db=""
  if [ "$backend" = postgres ]; then
    db="scimd_evbench_$$_$label"; db=${db//-/_}
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
    db_args=(--database-url "postgres://postgres@127.0.0.1:5432/$db")
  fi
  (cd "$work" && exec env "$@" "$bin" serve --listen "127.0.0.1:$port" "${db_args[@]}" >serve.log 2>&1) &
  local server=$!
  for _ in $(seq 50); do grep -q "Listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
  local token; token=$(awk '/^Secret:/ {print $2}' "$work/serve.log")
  local url="http://127.0.0.1:$port/t/default/scim/v2"
  local receivers=()
  if [ "$label" = webhooks ]; then
    for i in 1 2; do
      local rport=$((port + i))
      local out; out=$(cd "$work" && "$bin" "${db_args[@]}" webhook add --tenant default --url "http://127.0.0.1:$rport/hook" --json)
      local secret; secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])' <<<"$out")
      WEBHOOK_SECRET="$secret" python3 examples/webhook_receiver.py --port "$rport" --out "$work/rx$i.jsonl" >/dev/null &
      receivers+=($!)
    done
  fi
  echo "## $label"
  run() { "$bin" bench --url "$url" --token "$token" --duration "${secs}s" --concurrency "$conc" "$@"; }
  run --workload create-users
  run --workload patch-users --users 2000
  run --workload group-members --group-size 1000
  if [ "$label" = webhooks ]; then
    local head; head=$(cd "$work" && "$bin" "${db_args[@]}" events --tenant default --after latest 2>&1 | awk '{print $3}')
    local start; start=$(date +%s.%N)
    while :; do
      local lines; lines=$(cat "$work"/rx*.jsonl 2>/dev/null | wc -l)
      [ "$lines" -ge $((2 * head)) ] && break
      sleep 0.5
    done
    echo "webhooks: both endpoints caught up to event $head $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s after the bench ended ($(wc -l <"$work/rx1.jsonl") + $(wc -l <"$work/rx2.jsonl") deliveries verified)"
    kill "${receivers[@]}" 2>/dev/null || true
  fi
  kill $server; wait $server 2>/dev/null || true
  [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres
  rm -rf "$work"
}
[ -n "${BASELINE_BIN:-}" ] && one baseline SCIMD_PROVISIONING_LOG=true
one log-off SCIMD_PROVISIONING_LOG=false
one feed SCIMD_PROVISIONING_LOG=true
one webhooks SCIMD_PROVISIONING_LOG=true

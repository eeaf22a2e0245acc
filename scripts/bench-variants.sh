#!/usr/bin/env bash
# The SQLite variants of docs/performance.md, each on a fresh release-build scimd:
# synchronous=FULL, provisioning log off and on, and adding one member to groups of 10,
# 1,000, 10,000 and 100,000. Usage: scripts/bench-variants.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
cargo build --release -q -p scimd
bin="$PWD/target/release/scimd"
work=$(mktemp -d); trap 'pkill -f "serve --listen 127.0.0.1:1930" || true; rm -rf "$work"' EXIT
start() { # dir port env...
  local dir="$work/$1" port=$2; shift 2; mkdir -p "$dir"
  (cd "$dir" && exec env "$@" "$bin" serve --listen "127.0.0.1:$port" >serve.log 2>&1) &
  for _ in $(seq 50); do grep -q "Listening on" "$dir/serve.log" 2>/dev/null && break; sleep 0.2; done
  awk '/^Secret:/ {print $2}' "$dir/serve.log"
}
bench() { "$bin" bench --url "http://127.0.0.1:$1/t/default/scim/v2" --token "$2" --duration "${secs}s" --concurrency 16 "${@:3}"; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, ${secs}s per run"
t=$(start full 19301 SCIMD_SQLITE_SYNCHRONOUS=full); echo "## synchronous=FULL"; bench 19301 "$t" --workload create-users | tail -1
t=$(start nolog 19302 SCIMD_PROVISIONING_LOG=0); echo "## provisioning log off"; bench 19302 "$t" --workload create-users | tail -1
t=$(start log 19303 SCIMD_PROVISIONING_LOG=1); echo "## provisioning log on"; bench 19303 "$t" --workload create-users | tail -1
t=$(start groups 19304 SCIMD_PROVISIONING_LOG=1)
for size in 10 1000 10000 100000; do echo "## group of $size"; bench 19304 "$t" --workload group-members --group-size "$size" | tail -2; done

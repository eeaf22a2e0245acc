#!/usr/bin/env bash
# A smoke run of every `scimd bench` workload against a fresh scimd (SQLite): each runs for
# N seconds (default 20) and must finish without an error response. No timing assertions:
# the numbers are printed for the log only. Uses the binary the test suite built
# (target/debug/scimd) unless SCIMD_BIN names another. Usage: scripts/bench-smoke.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
bin="$(realpath -m "${SCIMD_BIN:-target/debug/scimd}")"
[ -x "$bin" ] || cargo build -q -p scimd
. scripts/serve-fresh.sh
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
check() {
  python3 -c 'import json,sys
r=json.load(sys.stdin)
bad={k["kind"]:k["errors"] for k in r["kinds"] if k["errors"]}
print("  %-14s %8d requests %9.0f req/s  %s" % (r["workload"], r["requests"], r["per_second"], "errors: %s" % bad if bad else "ok"))
sys.exit(1 if bad or r["requests"] == 0 else 0)'
}
echo "bench smoke: ${secs}s per workload against $url"
for args in "--workload create-users" "--workload lookup --users 2000" \
            "--workload patch-users --users 2000" "--workload group-members --group-size 1000" \
            "--workload list --users 2000" "--workload idp-cycle --users 2000" \
            "--workload lookup --users 3000 --seed" "--workload patch-users --users 3000 --seed" \
            "--workload ceiling"; do
  # shellcheck disable=SC2086
  "$bin" bench --url "$url" --token "$token" --duration "${secs}s" --concurrency 8 --json $args | check
done

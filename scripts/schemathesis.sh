#!/usr/bin/env bash
# Fuzzes scimd's HTTP API with schemathesis (PyPI) from docs/openapi.yaml: generated and
# mutated requests on every operation; the check is "no 5xx", and the server must neither
# panic nor fail to stop cleanly. Usage: scripts/schemathesis.sh [max-examples per operation]
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-40}"
venv="$PWD/target/schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis==4.32.5
fi
cargo build -q -p scimd
bin="$PWD/target/debug/scimd"
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
(cd "$work" && exec "$bin" serve --listen "127.0.0.1:$port" >serve.out 2>serve.err) &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "Listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
token=$(awk '/^Secret:/ {print $2}' "$work/serve.out")
url="http://127.0.0.1:$port/t/default/scim/v2"
status=0
"$venv/bin/st" run docs/openapi.yaml --url "$url" -H "Authorization: Bearer $token" \
  --checks not_a_server_error --max-examples "$examples" --workers 2 --seed 7253 \
  --report ndjson --report-dir "$work/report" >"$work/st.log" 2>&1 || status=$?
tail -25 "$work/st.log"
cases=$(grep -oE '[0-9]+ generated' "$work/st.log" | tail -1 || true)
fivexx=$(grep -oE '"status_code": *5[0-9][0-9]' "$work/report/"*.ndjson 2>/dev/null | wc -l || true)
echo "schemathesis: exit $status, test cases: ${cases:-?}, 5xx responses seen: $fivexx"
if grep -q "panicked" "$work/serve.err"; then echo "scimd panicked:"; grep -A5 panicked "$work/serve.err"; exit 1; fi
kill -TERM $server; wait $server || { echo "scimd did not stop cleanly"; exit 1; }
trap 'rm -rf "$work"' EXIT
[ "$status" -eq 0 ] && [ "${fivexx:-0}" -eq 0 ]

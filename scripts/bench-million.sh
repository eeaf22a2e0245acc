#!/usr/bin/env bash
# scimd at 1,000,000 users (SQLite): loads the dataset once (`scimd bench --seed`, kept in
# DIR between runs), then measures lookups, cursor paging (page 1 … 5,000), index paging,
# RSS and the time from start to the first answered lookup. Usage:
# scripts/bench-million.sh [DIR] [users]   (default DIR=target/million, users=1000000)
#   DATABASE_URL=postgres://… runs the same on PostgreSQL (the database is kept between runs
#   like the SQLite file; RSS is then scimd's, and the database's size is printed);
#   BIN=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(realpath -m "${1:-target/million}")"; users="${2:-1000000}"; port=19191
bin="${BIN:-$PWD/target/release/scimd}"
[ -n "${BIN:-}" ] || cargo build --release -q -p scimd
mkdir -p "$dir"
db_args=(); [ -z "${DATABASE_URL:-}" ] || db_args=(--database-url "$DATABASE_URL")
url="http://127.0.0.1:$port/t/default/scim/v2"
serve() {
  (cd "$dir" && exec "$bin" serve --listen "127.0.0.1:$port" "${db_args[@]}" >>serve.log 2>&1) &
  echo $! > "$dir/pid"
}
stop() { kill "$(cat "$dir/pid")" 2>/dev/null || true; sleep 1; }
trap stop EXIT
serve; for _ in $(seq 100); do grep -q "Listening on" "$dir/serve.log" 2>/dev/null && break; sleep 0.2; done
[ -s "$dir/token" ] || awk '/^Secret:/ {print $2; exit}' "$dir/serve.log" > "$dir/token"
token=$(cat "$dir/token")
echo "# $(date -u +%FT%TZ) $(nproc) cores, $users users"
"$bin" bench --url "$url" --token "$token" --workload lookup --users "$users" --seed --duration 20s --concurrency 16 | tail -3
grep -E "VmRSS|VmHWM" "/proc/$(cat "$dir/pid")/status"
python3 - "$url" "$token" <<'PY'
import json, sys, time, urllib.request
base, tok = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + tok})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    return body, (time.perf_counter() - t) * 1000
cursor, page, times = "", 0, {}
while True:
    body, ms = get(f"/Users?count=200&cursor={cursor}&attributes=userName")
    page += 1; times[page] = ms
    cursor = body.get("nextCursor")
    if not cursor: break
print(f"cursor paging: {page} pages of 200, whole walk {sum(times.values())/1000:.1f} s")
for p in sorted({1, 2, page // 2, page}):
    print(f"  page {p}: {times[p]:.1f} ms")
for start in (1, 500001, 999801):
    _, ms = get(f"/Users?count=200&startIndex={start}&attributes=userName")
    print(f"  index paging startIndex={start}: {ms:.1f} ms")
PY
grep -E "VmRSS|VmHWM" "/proc/$(cat "$dir/pid")/status"
if [ -n "${DATABASE_URL:-}" ]; then
  psql "$DATABASE_URL" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"
fi
stop
start=$(date +%s%N); serve
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/Users?filter=userName%20eq%20%22seed-123@bench.example%22")" = 200 ]; do sleep 0.005; done
echo "start-up: first lookup answered $(( ($(date +%s%N) - start) / 1000000 )) ms after start"

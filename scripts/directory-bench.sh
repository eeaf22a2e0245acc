#!/usr/bin/env bash
# The directory sources' benchmark (docs/sync.md §12, §13): a generated directory of USERS
# users and NGROUPS groups of MEMBERS members in the Google or Entra emulator
# (crates/scim-testkit/examples/directory_fake.rs), provisioned by `scimd sync run` into a
# scimd tenant on SQLite, all on this machine. Prints, for the initial cycle, a cycle with
# 1 % of the users changed and a cycle with no change: wall time, the requests the engine
# sent to the target and to the directory API, and the engine's peak RSS.
#   KIND=google USERS=100000 NGROUPS=10000 MEMBERS=10 scripts/directory-bench.sh
# Google is paced at RATE requests a second (default 38) under the emulated quota of
# QUOTA a minute (default 2,400, Google's).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${KIND:-google}; USERS=${USERS:-100000}; NGROUPS=${NGROUPS:-10000}; MEMBERS=${MEMBERS:-10}
RATE=${RATE:-38}; QUOTA=${QUOTA:-2400}; IN_FLIGHT=${IN_FLIGHT:-16}
bin=${BIN:-$PWD/target/release/scimd}
[ -x "$bin" ] || cargo build --release -p scimd
cargo build --release -q -p scim-testkit --example directory_fake
fake_bin=$PWD/target/release/examples/directory_fake
. scripts/serve-fresh.sh
mkfifo "$work/ctl"
"$fake_bin" "$KIND" "$USERS" "$NGROUPS" "$MEMBERS" "$work" "$QUOTA" <"$work/ctl" >"$work/fake.log" 2>&1 &
fake=$!
exec 3>"$work/ctl"
trap 'exec 3>&-; kill $server $fake 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 600); do [ -s "$work/fake.url" ] && break; sleep 0.2; done
fake_url=$(cat "$work/fake.url")
export SCIMD_DATABASE_URL="sqlite://$work/engine.db" APP_TOKEN="$token" SCIMD_OUTBOUND_ALLOW_LOOPBACK=true
if [ "$KIND" = google ]; then
  source_keys="kind = \"google\"
credentials_file = \"$work/sa.json\"
subject = \"admin@example.com\"
api_url = \"$fake_url\"
rate_limit = $RATE
max_in_flight = 8"
else
  echo "test~secret.for-the-emulator" >"$work/graph.secret"
  source_keys="kind = \"entra\"
tenant_id = \"8e3c4d2a-1b2c-4d5e-8f90-123456789abc\"
client_id = \"0b1c2d3e-aaaa-bbbb-cccc-1234567890ab\"
client_secret_file = \"$work/graph.secret\"
authority_url = \"$fake_url\"
graph_url = \"$fake_url\"
rate_limit = 0"
fi
cat >"$work/job.toml" <<JOB
name = "bench"
[source]
$source_keys
[target]
url = "$url"
token_env = "APP_TOKEN"
max_in_flight = $IN_FLIGHT
rate_limit = 0
JOB
api_requests() { echo counts >&3; sleep 0.5; awk '/^requests/ {r=$2; t=$4} END {print r, t}' "$work/fake.log"; }
measure() { # label
  local out before after
  before=$(api_requests)
  out=$( { /usr/bin/time -f 'RSS_KB %M CPU %U+%S' "$bin" --json sync run "$work/job.toml" >"$work/run.json"; } 2>&1 ) || { echo "$out"; exit 1; }
  after=$(api_requests)
  python3 - "$1" "$work/run.json" "$(echo "$out" | awk '/RSS_KB/ {print $2}')" "$(echo "$out" | awk '/RSS_KB/ {print $4}')" "$before" "$after" <<'PY'
import json, sys
label, path, rss, cpu, before, after = sys.argv[1:7]
r = json.load(open(path))
secs = r["duration_ms"] / 1000
b, a = [int(x) for x in before.split()], [int(x) for x in after.split()]
print(f"{label:<14} {secs:8.2f} s  {r['counts']['requests']:>7} target requests  "
      f"{a[0] - b[0]:>6} API requests ({a[1] - b[1]} throttled)  "
      f"{r['source_users']} users {r['source_groups']} groups  peak RSS {int(rss or 0) / 1024:5.0f} MiB  "
      f"engine CPU {cpu} s  {r['status']}")
PY
}
echo "source: $KIND emulator, $USERS users, $NGROUPS groups × $MEMBERS members; target scimd (SQLite); $(nproc) cores"
measure "initial cycle"
echo "change $((USERS / 100))" >&3
measure "1 % changed"
measure "no change"

# Sourced by the scripts that need a throw-away scimd (SQLite, in a temp dir): starts
# "$bin serve" on a random loopback port, waits until it listens, and sets work, server,
# token and url. The caller sets `bin` and its own EXIT trap.
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
(cd "$work" && exec "$bin" serve --listen "127.0.0.1:$port" >serve.log 2>&1) &
server=$!
for _ in $(seq 100); do grep -q "Listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
token=$(awk '/^Secret:/ {print $2}' "$work/serve.log")
url="http://127.0.0.1:$port/t/default/scim/v2"

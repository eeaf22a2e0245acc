#!/usr/bin/env bash
# The container image, used as docs/deploy.md tells an operator to:
#   buildah inspect (non-root user, entrypoint, health check, volume, labels, size) →
#   podman run with a named volume → /readyz from the host through the published port →
#   `podman healthcheck run` → the bootstrap token read from the volume (`podman cp`, and
#   mode 0600 for uid 10001 in the volume) → a SCIM create → the container replaced by a
#   new one on the same volume (an upgrade): the same token works and the user is still
#   there → `podman restart` keeps them too → two nodes from the image on one PostgreSQL
#   (this machine's, as deploy/compose.yaml sets them up with its own): a user created
#   through one is found through the other. The archive scripts/image.sh wrote is loaded
#   first, so what is run is what a user of the archive gets.
# Needs root and the image from scripts/image.sh. Usage: scripts/image-test.sh [image]
#
# This machine (a Firecracker VM without systemd) needs two things a usual host does not,
# both applied here only when detected and both outside the image and the docs' commands:
#   - cgroups in hybrid mode (v1 controllers plus a cgroup2 mount): crun refuses to start
#     any container ("cgroups in hybrid mode not supported"), so this script re-runs itself
#     in a private mount namespace with the cgroup2 mount taken away (v1 only);
#   - no CAP_SYS_RESOURCE: podman's default rlimits (nofile 1048576, nproc 4194304) cannot
#     be set ("setrlimit RLIMIT_NOFILE: Operation not permitted"), so the runs below ask
#     for limits this process may grant.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "image-test: needs root (podman storage)" >&2; exit 1; }
for tool in buildah podman; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman >/dev/null
  fi
done
if [ -z "${SCIMD_IMAGE_TEST_NS:-}" ] && mountpoint -q /sys/fs/cgroup/unified \
  && mountpoint -q /sys/fs/cgroup/memory; then
  exec unshare --mount --propagation private -- env SCIMD_IMAGE_TEST_NS=1 /bin/bash -c \
    'umount /sys/fs/cgroup/unified && exec /bin/bash "$0" "$@"' "$0" "$@"
fi

version="$(target/release/scimd --version | awk '{print $2}')"
image="${1:-localhost/scimd:$version}"
name="scimd-image-test"
volume="scimd-image-test-data"
work="$PWD/target/image-test"
step() { echo "-- $*"; }
# podman without systemd logs an error for every health check timer it cannot add/remove.
quiet() { "$@" 2> >(grep -v 'systemd connection' >&2); }
fail() {
  echo "image-test: FAILED: $*" >&2
  podman logs "$name" 2>/dev/null | tail -20 >&2 || true
  exit 1
}
cleanup() {
  podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  podman rm -f -t 5 "$name-a" "$name-b" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" "$volume-pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
rm -rf "$work" && mkdir -p "$work"

# The released file when there is one (scripts/release.sh), else the one image.sh wrote.
archive="target/dist/$version/scimd_${version}_$(dpkg --print-architecture).image.tar"
[ -f "$archive" ] || archive="target/image/scimd_${version}_$(dpkg --print-architecture).image.tar"
if [ -z "${1:-}" ] && [ -f "$archive" ]; then
  step "podman load -i $archive"
  podman load -q -i "$archive" >/dev/null || fail "podman load"
fi

step "buildah inspect $image"
buildah inspect --type image "$image" >"$work/inspect.json" || fail "no image $image (run scripts/image.sh)"
python3 - "$work/inspect.json" "$version" <<'PY' || fail "image configuration"
import json, sys
d = json.load(open(sys.argv[1])); want_version = sys.argv[2]
c = d["Docker"]["config"]
user = c.get("User", "")
assert user and user.split(":")[0] not in ("", "0", "root"), f"runs as {user!r}"
assert c.get("Entrypoint") == ["/usr/bin/scimd"], c.get("Entrypoint")
assert c.get("Cmd") == ["serve"], c.get("Cmd")
hc = (c.get("Healthcheck") or {}).get("Test")
assert hc == ["CMD", "/usr/bin/scimd", "health"], hc
assert "/var/lib/scimd" in (c.get("Volumes") or {}), c.get("Volumes")
labels = c.get("Labels") or {}
assert labels.get("org.opencontainers.image.version") == want_version, labels
env = dict(e.split("=", 1) for e in c.get("Env", []))
assert env.get("SCIMD_BOOTSTRAP_TOKEN_FILE", "").startswith("/var/lib/scimd/"), env
print(f"   user {user}, entrypoint {c['Entrypoint']} {c['Cmd']}, healthcheck {hc[1:]},"
      f" volume /var/lib/scimd, version {labels['org.opencontainers.image.version']}")
PY
podman image inspect "$image" --format '   size {{.Size}} bytes, id {{.Id}}' | cut -c1-80

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
nofile="$(ulimit -Hn)"; [ "$nofile" -le 65536 ] || nofile=65536
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
run() {
  quiet podman run -d --name "$name" "${limits[@]}" -v "$volume:/var/lib/scimd" \
    -p "127.0.0.1:$port:8080" -e "SCIMD_PUBLIC_URL=http://127.0.0.1:$port" "$image" >/dev/null \
    || fail "podman run"
  python3 scripts/scim-probe.py ready "$port" || fail "no /readyz answer through the published port"
}
scim_create() { python3 scripts/scim-probe.py create "$port" "$(cat "$work/token")" "$1"; }

step "podman run -v $volume:/var/lib/scimd -p 127.0.0.1:$port:8080"
run
podman healthcheck run "$name" >/dev/null 2>&1 || fail "healthcheck"
[ "$(podman top "$name" huser | tail -1 | tr -d ' ')" = 10001 ] || fail "not running as uid 10001"

step "bootstrap token from the volume"
podman cp "$name:/var/lib/scimd/bootstrap.token" "$work/token" || fail "no bootstrap token in the volume"
mountpoint="$(podman volume inspect "$volume" --format '{{.Mountpoint}}')"
[ "$(stat -c '%a %u' "$mountpoint/bootstrap.token")" = "600 10001" ] || fail "token file mode/owner"
if podman logs "$name" 2>&1 | grep -qF "$(tr -d '\n' <"$work/token")"; then fail "the token is in the log"; fi
[ "$(scim_create first@example.com)" = 201 ] || fail "SCIM create"
echo 'a long enough passphrase 42' | podman exec -i "$name" scimd admin create alice --password-stdin >/dev/null \
  || fail "podman exec … scimd admin create"
podman exec "$name" scimd admin list | grep -q alice || fail "the operator is not listed"

step "a new container on the same volume (an upgrade) keeps the token and the data"
quiet podman rm -f -t 10 "$name" >/dev/null
run
[ "$(scim_create first@example.com)" = 409 ] || fail "the user created before is gone"
[ "$(scim_create second@example.com)" = 201 ] || fail "SCIM create in the new container"

step "podman restart keeps them"
quiet podman restart -t 10 "$name" >/dev/null || fail "podman restart"
python3 scripts/scim-probe.py ready "$port" || fail "no /readyz answer after the restart"
[ "$(scim_create second@example.com)" = 409 ] || fail "data lost on restart"

step "deploy/compose.yaml: parses, names known settings, shares one volume"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
python3 - deploy/compose.yaml crates/scimd/src <<'PY' || fail "deploy/compose.yaml"
import os, re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
known = set()
for dirpath, _, names in os.walk(sys.argv[2]):
    for n in names:
        known |= set(re.findall(r'"(SCIMD_[A-Z_]+)"', open(os.path.join(dirpath, n)).read()))
nodes = [s for s in compose["services"].values() if "scimd" in s["image"]]
assert len(nodes) == 2, "two scimd nodes"
for s in nodes:
    unknown = set(s["environment"]) - known
    assert not unknown, f"unknown settings {unknown}"
    assert s["environment"]["SCIMD_DATABASE_URL"].startswith("postgres://")
    assert s["volumes"] == nodes[0]["volumes"], "the nodes do not share the instance key"
PY

step "two nodes on one PostgreSQL, one volume (the instance key) between them"
db="scimd_image_test"
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -U postgres -d postgres -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
psql_admin "DROP DATABASE IF EXISTS $db" && psql_admin "CREATE DATABASE $db" || fail "PostgreSQL on 127.0.0.1:5432"
node() { # name, port
  quiet podman run -d --name "$1" "${limits[@]}" --network host -v "$volume-pg:/var/lib/scimd" \
    -e "SCIMD_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db" -e "SCIMD_LISTEN=127.0.0.1:$2" \
    -e "SCIMD_PUBLIC_URL=http://127.0.0.1:$2" "$image" >/dev/null || fail "podman run $1"
  python3 scripts/scim-probe.py ready "$2" || fail "$1: no /readyz answer"
}
port_a="$(free_port)"; port_b="$(free_port)"
node "$name-a" "$port_a"
node "$name-b" "$port_b"
podman cp "$name-a:/var/lib/scimd/bootstrap.token" "$work/token" || fail "no bootstrap token"
port="$port_a"
[ "$(scim_create shared@example.com)" = 201 ] || fail "SCIM create on node a"
[ "$(python3 scripts/scim-probe.py count "$port_b" "$(cat "$work/token")" shared@example.com)" = 1 ] \
  || fail "node b does not see node a's user"
quiet podman rm -f -t 10 "$name-a" "$name-b" >/dev/null
psql_admin "DROP DATABASE IF EXISTS $db" || true
echo "image-test: ok ($image)"

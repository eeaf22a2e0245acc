#!/usr/bin/env bash
# The Debian package, used as docs/deploy.md tells an operator to, in a throw-away Debian
# root made by debootstrap (nothing is installed on this machine):
#   lintian (no errors) → dpkg -i → the user, directories and settings file are there with
#   their modes → the unit's own command line (User=, WorkingDirectory=, Environment=,
#   ExecStart= read from the installed unit) answers /readyz → a SCIM create with the
#   bootstrap token read from /var/lib/scimd → `scimd health` → a reinstall (the upgrade
#   path) keeps the edited settings and the data → remove keeps both → purge leaves nothing
#   but /var/lib/scimd and the scimd user, which the docs say are kept.
# Needs root (debootstrap, chroot). Usage: scripts/package-test.sh [path/to/scimd.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
deb="$(realpath "${1:-$(ls target/debian/scimd_*.deb | head -1)}")"
[ "$(id -u)" = 0 ] || { echo "package-test: needs root (debootstrap and chroot)" >&2; exit 1; }
for tool in lintian debootstrap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done

step() { echo "-- $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }

work="$PWD/target/package-test"
root="$work/root"
# A root left by an interrupted run holds no mounts (each chroot below has its own mount
# namespace), so removing it touches nothing outside.
rm -rf "$work"
mkdir -p "$work"

step "lintian $(basename "$deb")"
lintian --fail-on error "$deb" >"$work/lintian.txt" 2>&1 || { cat "$work/lintian.txt"; fail "lintian reports errors"; }
grep -v '^running with root' "$work/lintian.txt" || true
suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
step "debootstrap --variant=minbase $suite"
debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }

# A command in the root, with /proc mounted in a mount namespace of its own.
in_root() {
  unshare --mount --propagation private -- /bin/sh -c \
    'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@"
}
# Every path in the root but the package manager's own records, logs and caches.
files() {
  (cd "$root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./var/lib/dpkg \
    -o -path ./var/log -o -path ./var/cache -o -path ./tmp -o -path ./run \) -prune -o -print | sort)
}
files >"$work/before"

cp "$deb" "$root/tmp/scimd.deb"
step "dpkg -i"
in_root dpkg -i /tmp/scimd.deb
in_root /usr/bin/scimd --version
[ -f "$root/usr/share/man/man1/scimd.1.gz" ] || fail "no manual page"

step "user, directories, settings"
uid="$(in_root id -u scimd)" || fail "no scimd user"
[ "$uid" -lt 1000 ] || fail "scimd is not a system user (uid $uid)"
[ "$(in_root getent passwd scimd | cut -d: -f7)" = /usr/sbin/nologin ] || fail "scimd has a login shell"
check_stat() { # path, wanted "mode owner group"
  got="$(in_root stat -c '%a %U %G' "$1")"
  [ "$got" = "$2" ] || fail "$1 is '$got', wanted '$2'"
}
check_stat /var/lib/scimd "700 scimd scimd"
check_stat /etc/scimd "750 root scimd"
check_stat /etc/scimd/scimd.toml "640 root scimd"
cmp -s "$root/etc/scimd/scimd.toml" "$root/usr/share/scimd/scimd.toml" || fail "settings differ from the default"
unit="$root/usr/lib/systemd/system/scimd.service"
[ -f "$unit" ] || fail "no unit"
[ -L "$root/etc/systemd/system/multi-user.target.wants/scimd.service" ] || fail "unit not enabled"
# systemd's own check of the unit (keys, values), with ExecStart pointed at the root's binary;
# any remark fails (an unknown key is only "ignoring" to systemd).
if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s#=/usr/bin/scimd#=$root/usr/bin/scimd#" "$unit" >"$work/scimd.service"
  remarks="$(systemd-analyze verify --man=no "$work/scimd.service" 2>&1)" || fail "systemd-analyze verify: $remarks"
  [ -z "$remarks" ] || fail "systemd-analyze verify: $remarks"
fi
# Every program the unit runs is there after dpkg -i (a minimal Debian has no /bin/kill).
for cmd in $(sed -n 's/^Exec[A-Za-z]*=[-@+!:]*\([^ ]*\).*/\1/p' "$unit"); do
  [ -x "$root$cmd" ] || fail "the unit runs $cmd, which is not installed"
done

# The operator's one edit (docs/deploy.md): where to listen and the public URL.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
sed -i "s|^listen = .*|listen = \"127.0.0.1:$port\"|; s|^# public_url = .*|public_url = \"http://127.0.0.1:$port\"|" \
  "$root/etc/scimd/scimd.toml"

# The unit's own command line, as its user, in its directory, with its environment.
unit_value() { sed -n "s/^$1=//p" "$unit"; }
user="$(unit_value User)"
dir="$(unit_value WorkingDirectory)"
exec_start="$(unit_value ExecStart)"
mapfile -t unit_env < <(unit_value Environment)
server=""
start_server() {
  in_root /usr/sbin/runuser -u "$user" -- /usr/bin/env -i PATH=/usr/bin:/bin "${unit_env[@]}" \
    /bin/sh -c "cd '$dir' && exec $exec_start" >>"$work/server.log" 2>&1 &
  server=$!
  python3 scripts/scim-probe.py ready "$port" || { cat "$work/server.log"; fail "no /readyz answer"; }
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; fail "scimd serve exited"; }
}
# The scimd of this root only (not another scimd on this machine, in a container or not).
root_pids() {
  for p in $(pgrep -f '^/usr/bin/scimd serve' || true); do
    [ "$(readlink "/proc/$p/root" 2>/dev/null)" = "$root" ] && echo "$p"
  done
  return 0
}
stop_server() {
  [ -n "$server" ] || return 0
  for p in $(root_pids); do kill -TERM "$p" 2>/dev/null || true; done
  wait "$server" 2>/dev/null || true
  server=""
}
trap 'stop_server' EXIT

step "ExecStart as $user (${unit_env[*]})"
start_server
token_file="$root/var/lib/scimd/bootstrap.token"
[ -s "$token_file" ] || { cat "$work/server.log"; fail "no bootstrap token file"; }
check_stat /var/lib/scimd/bootstrap.token "600 scimd scimd"
if grep -qF "$(cat "$token_file")" "$work/server.log"; then fail "the token is in the log"; fi
scim_create() { python3 scripts/scim-probe.py create "$port" "$(cat "$token_file")" "$1"; }
[ "$(scim_create first@example.com)" = 201 ] || fail "SCIM create"
# `systemctl reload scimd`: the unit's ExecReload as systemd runs it ($$ is a literal $ to
# systemd, MAINPID is in the command's environment); the service must keep serving.
reload="$(unit_value ExecReload | sed 's/\$\$/$/g')"
main_pid="$(root_pids | head -1)"
[ -n "$reload" ] && [ -n "$main_pid" ] || fail "no ExecReload or no server process"
MAINPID="$main_pid" eval "$reload" || fail "ExecReload failed"
sleep 0.5
kill -0 "$main_pid" 2>/dev/null || { cat "$work/server.log"; fail "the reload ended the service"; }
[ "$(scim_create after-reload@example.com)" = 201 ] || fail "SCIM create after a reload"
grep -q "nothing to reload" "$work/server.log" || fail "the reload was not seen"
in_root /usr/sbin/runuser -u "$user" -- /usr/bin/env SCIMD_CONFIG=/etc/scimd/scimd.toml \
  /usr/bin/scimd health || fail "scimd health"
echo 'a long enough passphrase 42' | in_root /usr/sbin/runuser -u "$user" -- /usr/bin/env \
  SCIMD_CONFIG=/etc/scimd/scimd.toml /usr/bin/scimd admin create alice --password-stdin >/dev/null \
  || fail "scimd admin create as the service user"
stop_server

step "reinstall (the upgrade path) keeps the settings and the data"
in_root dpkg -i /tmp/scimd.deb >/dev/null
grep -q "^listen = \"127.0.0.1:$port\"" "$root/etc/scimd/scimd.toml" || fail "settings overwritten"
start_server
[ "$(scim_create first@example.com)" = 409 ] || fail "the user created before is gone"
[ "$(scim_create second@example.com)" = 201 ] || fail "SCIM create after the upgrade"
stop_server

step "remove keeps the settings and the data"
in_root dpkg -r scimd >/dev/null
[ ! -e "$root/usr/bin/scimd" ] || fail "binary left after remove"
[ -f "$root/etc/scimd/scimd.toml" ] || fail "settings gone after remove"
[ -f "$root/var/lib/scimd/scimd.db" ] || fail "data gone after remove"

step "purge leaves only the data and the user"
in_root dpkg -P scimd >/dev/null
files >"$work/after"
left="$(comm -13 "$work/before" "$work/after" \
  | grep -v -E '^\./var/lib/scimd(/|$)' \
  | grep -v -E '^\./etc/(passwd|group|shadow|gshadow)-$' || true)"
[ -z "$left" ] || fail "purge left: $left"
[ -f "$root/var/lib/scimd/scimd.db" ] || fail "data gone after purge"
in_root id -u scimd >/dev/null || fail "user gone after purge"
step "a scimd user made by hand (no scimd group) before the install"
in_root deluser --quiet --system scimd >/dev/null 2>&1 || true
in_root adduser --quiet --system --no-create-home scimd >/dev/null
in_root dpkg -i /tmp/scimd.deb >/dev/null || fail "dpkg -i with a scimd user without its group"
in_root getent group scimd >/dev/null || fail "no scimd group"
check_stat /etc/scimd/scimd.toml "640 root scimd"
in_root dpkg -P scimd >/dev/null
echo "package-test: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
rm -rf "$work"

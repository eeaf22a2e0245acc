#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, starts what it uses.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL backs the store and server tests; start the local cluster if it is down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# The console's browser tests drive Debian's Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver for the console browser tests"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The engine's LDAP source is tested against a real OpenLDAP (slapd, started by the tests).
if [ ! -x /usr/sbin/slapd ] || ! command -v ldapmodify >/dev/null 2>&1; then
  echo "installing slapd and ldap-utils for the LDAP source tests"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq slapd ldap-utils >/dev/null
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

# Third-party SCIM servers as targets of the provisioning engine: scim2-server (PyPI) and
# SCIMMY (npm, with the small in-memory host in scripts/peers/scimmy), both pinned.
peer_venv="$PWD/target/peer-venv"
if [ ! -x "$peer_venv/bin/scim2-server" ]; then
  python3 -m venv "$peer_venv"
  "$peer_venv/bin/pip" install -q scim2-server==0.8.3
fi
# A real SMTP server for the engine's notification tests.
if ! "$peer_venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  "$peer_venv/bin/pip" install -q aiosmtpd==1.4.6
fi
peer_scimmy="$PWD/target/peer-scimmy"
if [ ! -d "$peer_scimmy/node_modules/scimmy" ]; then
  mkdir -p "$peer_scimmy"
  cp scripts/peers/scimmy/package.json scripts/peers/scimmy/package-lock.json "$peer_scimmy/"
  (cd "$peer_scimmy" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp scripts/peers/scimmy/host.cjs "$peer_scimmy/"
export SCIMD_SCIM2_SERVER="$peer_venv/bin/scim2-server" SCIMD_SCIMMY_HOST="$peer_scimmy/host.cjs" \
  SCIMD_AIOSMTPD_PYTHON="$peer_venv/bin/python" SCIMD_REQUIRE_PEERS=1

# PostgreSQL tests skip themselves where no server runs (plain `cargo test`); here they
# must run, and a missing server fails them.
export SCIMD_REQUIRE_POSTGRES=1

# Doc tests (nextest does not run them), then every unit and integration test.
cargo test --workspace --doc --quiet
cargo nextest run --workspace --no-fail-fast

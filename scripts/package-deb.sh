#!/usr/bin/env bash
# The Debian package: target/debian/scimd_<version>-1_<arch>.deb (stripped binary, systemd
# unit, manual page, default settings; maintainer scripts in deploy/debian/) and beside it
# scimd-dbgsym_…ddeb with the debug symbols. Builds the release binary first (a no-op when
# it is up to date). Tools: cargo-deb from crates.io (pinned), installed if missing.
# Usage: scripts/package-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo_deb_version=3.8.0

cargo build --release --locked -p scimd
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb_version"; then
  cargo install cargo-deb --locked --version "$cargo_deb_version"
fi
rm -rf target/release/man && mkdir -p target/release/man
target/release/scimd generate man --dir target/release/man
gzip -9n target/release/man/*.1
rm -f target/debian/scimd_*.deb target/debian/scimd-dbgsym_*.ddeb
cargo deb -p scimd --no-build --dbgsym --locked
ls target/debian/scimd_*.deb

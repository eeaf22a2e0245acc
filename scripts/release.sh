#!/usr/bin/env bash
# A release in target/dist/<version>/: the Debian package (and its -dbgsym), the container
# image as an archive `podman load` / `docker load` read, a plain binary tarball, CycloneDX
# SBOMs (the binary's crates; the image's crates and Debian packages), SHA256SUMS; then a
# table of sizes and checksums. Needs root (the image). Tools from crates.io (cargo-deb,
# cargo-cyclonedx, pinned) and Debian (buildah) are installed when missing.
# Usage: scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cyclonedx_version=0.5.9

# What is released is a commit: refuse changes that are not in one (the image's revision
# label, the file times and SOURCE_DATE_EPOCH all name the commit).
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && [ -z "${SCIMD_RELEASE_ALLOW_DIRTY:-}" ]; then
  echo "release.sh: the work tree has changes that are not committed; commit them (or set" \
    "SCIMD_RELEASE_ALLOW_DIRTY=1 for a trial build)" >&2
  exit 1
fi
# Before anything is built: cargo-deb, tar and buildah take their file times from it.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
bash scripts/package-deb.sh >/dev/null
bash scripts/image.sh >/dev/null
version="$(target/release/scimd --version | awk '{print $2}')"
arch="$(dpkg --print-architecture)"
triple="$(rustc -vV | sed -n 's/^host: //p')"
dist="$PWD/target/dist/$version"
rm -rf "$dist" && mkdir -p "$dist"

cp target/debian/scimd_"$version"-*_"$arch".deb target/debian/scimd-dbgsym_"$version"-*_"$arch".ddeb "$dist/"
# Uncompressed: Debian 12's podman (4.3) cannot load a gzipped archive.
cp "target/image/scimd_${version}_${arch}.image.tar" "$dist/"

# The binary with what it needs beside it, for hosts that take neither package nor image.
bundle="scimd-$version-$triple"
stage="$PWD/target/dist/$bundle"
rm -rf "$stage" && mkdir -p "$stage"
objcopy --strip-debug target/release/scimd "$stage/scimd"
cp README.md docs/deploy.md deploy/scimd.service deploy/scimd.toml "$stage/"
cp deploy/debian/copyright "$stage/COPYRIGHT"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C target/dist -czf "$dist/$bundle.tar.gz" "$bundle"
rm -rf "$stage"

# SBOMs: the binary's crates (cargo-cyclonedx), and the image's: the same plus the Debian
# packages unpacked into it (their control data is in the image's /var/lib/dpkg/status.d).
if ! cargo cyclonedx --version 2>/dev/null | grep -q " $cyclonedx_version\$"; then
  cargo install cargo-cyclonedx --locked --version "$cyclonedx_version"
fi
cargo cyclonedx --manifest-path crates/scimd/Cargo.toml --format json --spec-version 1.5 \
  --no-build-deps --describe binaries -q
mv crates/scimd/scimd_bin.cdx.json "$dist/scimd_${version}.cdx.json"
python3 - "$dist/scimd_${version}.cdx.json" target/image/rootfs/var/lib/dpkg/status.d \
  "$dist/scimd_${version}_${arch}.image.cdx.json" "$arch" <<'PY'
import json, os, sys, email.parser
bom_path, status_dir, out, arch = sys.argv[1:5]
bom = json.load(open(bom_path))
for name in sorted(os.listdir(status_dir)):
    fields = email.parser.Parser().parsestr(open(os.path.join(status_dir, name)).read())
    version = fields["Version"]
    bom.setdefault("components", []).append({
        "type": "library", "name": fields["Package"], "version": version,
        "bom-ref": f"pkg:deb/debian/{fields['Package']}@{version}?arch={arch}",
        "purl": f"pkg:deb/debian/{fields['Package']}@{version}?arch={arch}",
        "description": (fields["Description"] or "").splitlines()[0],
    })
bom["metadata"]["component"]["type"] = "container"
json.dump(bom, open(out, "w"), indent=2)
PY

(cd "$dist" && sha256sum -- * >SHA256SUMS)
echo "release $version in $dist"
(cd "$dist" && while read -r sum file; do
  printf '  %-48s %10s  %s\n' "$file" "$(du -h --apparent-size "$file" | cut -f1)" "$sum"
done <SHA256SUMS)

#!/usr/bin/env bash
# The container image, from nothing pulled from an image registry: a root filesystem made
# of the release binary and three of Debian's packages (libc6 and libgcc-s1, which the
# binary links, and ca-certificates, which LDAPS and SMTP use), then `buildah bud` of
# deploy/container/Containerfile (FROM scratch). Results:
#   - the image localhost/scimd:<version> in this machine's container storage;
#   - target/image/scimd_<version>_<arch>.image.tar, which `podman load` / `docker load` read.
# Docker's image format (the OCI format has no HEALTHCHECK). Needs root (buildah's storage
# and the file owners in the image). Usage: scripts/image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "image.sh: needs root (buildah storage, owners in the image)" >&2; exit 1; }
if ! command -v buildah >/dev/null 2>&1; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
fi

cargo build --release --locked -p scimd
version="$(target/release/scimd --version | awk '{print $2}')"
arch="$(dpkg --print-architecture)"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
uid=10001

work="$PWD/target/image"
rootfs="$work/rootfs"
rm -rf "$rootfs" "$work/context"
mkdir -p "$rootfs" "$work/context" "$work/debs"

# Debian's packages, as the apt sources of this machine have them (the same glibc the
# binary was linked against), unpacked; their control data under /var/lib/dpkg/status.d
# (one file per package, as distroless images keep it) so image scanners see the versions.
# libgcc-s1's copyright lives in its gcc-N-base package (its doc directory is a link there).
gcc_base="$(apt-cache depends libgcc-s1 2>/dev/null | sed -n 's/^ *Depends: \(gcc-[0-9]*-base\).*/\1/p' | head -1)"
packages=(libc6 libgcc-s1 ${gcc_base:+"$gcc_base"} ca-certificates)
rm -f "$work"/debs/*.deb
if ! (cd "$work/debs" && apt-get download -qq "${packages[@]}" 2>/dev/null); then
  apt-get update -qq
  (cd "$work/debs" && apt-get download -qq "${packages[@]}")
fi
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$rootfs"
  dpkg-deb -f "$deb" >"$rootfs/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
done
# What update-ca-certificates would make, without running a maintainer script.
mkdir -p "$rootfs/etc/ssl/certs"
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt >"$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs/usr/sbin" "$rootfs/usr/share/lintian" "$rootfs/usr/share/man"

# The binary, debug sections stripped (symbols kept: a backtrace names its functions).
mkdir -p "$rootfs/usr/bin"
objcopy --strip-debug target/release/scimd "$rootfs/usr/bin/scimd"
chmod 755 "$rootfs/usr/bin/scimd"
# scimd's own licence and notice; the crates it is built from, with theirs, are in the
# release's SBOM.
mkdir -p "$rootfs/usr/share/doc/scimd"
cp deploy/debian/copyright "$rootfs/usr/share/doc/scimd/copyright"

# The user, the data directory (the volume), /tmp.
mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/lib/scimd"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nscimd:x:%s:%s:scimd:/var/lib/scimd:/usr/sbin/nologin\n' \
  "$uid" "$uid" >"$rootfs/etc/passwd"
printf 'root:x:0:\nscimd:x:%s:\n' "$uid" >"$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$rootfs/etc/hosts"
chmod 1777 "$rootfs/tmp"
chown "$uid:$uid" "$rootfs/var/lib/scimd"
chmod 0700 "$rootfs/var/lib/scimd"

tar --numeric-owner --sort=name --mtime="@$SOURCE_DATE_EPOCH" -C "$rootfs" -cf "$work/context/rootfs.tar" .

image="localhost/scimd:$version"
buildah bud --quiet --format docker --timestamp "$SOURCE_DATE_EPOCH" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -f deploy/container/Containerfile -t "$image" "$work/context" >/dev/null
# The build before this one, now untagged, goes (untagged images only).
podman image prune -f >/dev/null 2>&1 || true
archive="$work/scimd_${version}_${arch}.image.tar"
rm -f "$archive"
buildah push --quiet "$image" "docker-archive:$archive:$image" >/dev/null
echo "$image"
echo "$archive"

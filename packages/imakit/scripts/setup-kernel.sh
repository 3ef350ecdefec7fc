#!/usr/bin/env bash
# Prepares the real-kernel harness (real-kernel.md §1, §4.2): the Debian tools (through
# install-deps.sh), then the Debian kernel package, unpacked into a cache so that a second run does
# nothing. Only Debian's archive is used (`apt-get download`); nothing else is fetched.
#
# Cache layout: ${IMAKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imakit}/kernel/<kver>/
#   vmlinuz, config, modules/<path relative to lib/modules/<kver>/kernel>.ko, VERSION (package
#   name and version), and a `current` symlink in kernel/ naming the cached version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/install-deps.sh"

PKG="${IMAKIT_KERNEL_PKG:-linux-image-6.1.0-56-amd64}"
CACHE="${IMAKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imakit}"
KROOT="$CACHE/kernel"
mkdir -p "$KROOT"

# The modules the guest insmods (real-kernel.md §4.2, in load order), then optional hash modules.
MODULES=(
  drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko
  drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci_modern_dev.ko
  drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko
  lib/crc16.ko fs/mbcache.ko fs/jbd2/jbd2.ko crypto/crc32c_generic.ko fs/ext4/ext4.ko
  crypto/sha512_generic.ko crypto/sha3_generic.ko crypto/wp512.ko crypto/streebog_generic.ko
)

complete() { # $1 = cache dir of one version
  [ -s "$1/vmlinuz" ] && [ -s "$1/config" ] && [ -s "$1/VERSION" ] || return 1
  for m in "${MODULES[@]}"; do [ -s "$1/modules/$m" ] || return 1; done
}

# Already cached? (no apt access at all on the second run)
if [ -L "$KROOT/current" ] && complete "$KROOT/current"; then
  echo "setup-kernel: cached $(cat "$KROOT/current/VERSION") in $(readlink -f "$KROOT/current")"
  exit 0
fi

# The pinned package may have left the archive: fall back to what linux-image-amd64 depends on.
if ! apt-cache show "$PKG" >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null || true
fi
if ! apt-cache show "$PKG" >/dev/null 2>&1; then
  dep="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  [ -n "$dep" ] || { echo "setup-kernel: cannot resolve linux-image-amd64's kernel package" >&2; exit 5; }
  echo "setup-kernel: $PKG is not in the archive any more; using $dep (observations were made with $PKG)" >&2
  PKG="$dep"
fi
KVER="${PKG#linux-image-}"
DEST="$KROOT/$KVER"

work="$(mktemp -d "${TMPDIR:-/tmp}/imakit-setup-kernel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download -q "$PKG" >/dev/null )
deb="$(ls "$work"/*.deb | head -1)"
pkgver="$(dpkg-deb -f "$deb" Version)"
dpkg-deb -x "$deb" "$work/x"

stage="$work/stage"
mkdir -p "$stage/modules"
cp "$work/x/boot/vmlinuz-$KVER" "$stage/vmlinuz"
cp "$work/x/boot/config-$KVER" "$stage/config"
for m in "${MODULES[@]}"; do
  src="$work/x/lib/modules/$KVER/kernel/$m"
  # Debian may ship modules compressed (.ko.xz); this kernel ships plain .ko.
  if [ -f "$src" ]; then mkdir -p "$stage/modules/$(dirname "$m")"; cp "$src" "$stage/modules/$m"
  elif [ -f "$src.xz" ]; then mkdir -p "$stage/modules/$(dirname "$m")"; xz -dc "$src.xz" >"$stage/modules/$m"
  else echo "setup-kernel: module $m missing from $PKG" >&2; exit 5; fi
done
printf '%s %s %s\n' "$PKG" "$pkgver" "$(sha256sum "$stage/vmlinuz" | cut -d' ' -f1)" >"$stage/VERSION"

rm -rf "$DEST.tmp" && mv "$stage" "$DEST.tmp" && rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
ln -sfn "$KVER" "$KROOT/current"
echo "setup-kernel: cached $(cat "$DEST/VERSION") in $DEST"

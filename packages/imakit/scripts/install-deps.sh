#!/usr/bin/env bash
# Installs the Debian packages imakit's tests compare against (ground truth we did not write) and
# the real-kernel harness needs. Idempotent: skips apt when every command is already present.
set -euo pipefail
PKGS=(
  ima-evm-utils openssl attr fsverity keyutils e2fsprogs cpio xxd
  tpm2-tools swtpm swtpm-tools libtss2-tcti-swtpm0
  qemu-system-x86 qemu-utils busybox-static ovmf
  python3-cryptography bc file
  linux-kbuild-6.1
  rpm zstd
)
need=0
for c in evmctl openssl getfattr fsverity keyctl mkfs.ext4 cpio xxd tpm2_eventlog swtpm swtpm_setup \
  qemu-system-x86_64 busybox rpm rpmbuild zstd; do
  command -v "$c" >/dev/null 2>&1 || need=1
done
[ -e /usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0 ] || need=1
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || need=1
# the kernel's scripts/sign-file: modsig tests cross-check files it signs
compgen -G '/usr/lib/linux-kbuild-*/scripts/sign-file' >/dev/null || need=1
if [ "$need" = 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
fi
echo "install-deps: ok"

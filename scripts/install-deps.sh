#!/usr/bin/env bash
# Everything the workspace's tests need on a bare Debian machine: imakit's own tools (evmctl,
# openssl, tpm2-tools, swtpm, qemu, ...: packages/imakit/scripts/install-deps.sh) and what the
# other packages' tests use. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../packages/imakit/scripts/install-deps.sh"

# the verifier's tests run against Debian's PostgreSQL server, started by the tests on loopback
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends postgresql
fi
# the dashboard's browser tests drive Debian's Chromium with playwright-core (never a downloaded browser)
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium
fi
echo "install-deps (workspace): ok"

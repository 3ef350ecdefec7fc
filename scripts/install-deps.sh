#!/usr/bin/env bash
# Everything the workspace's tests need on a bare Debian machine: imakit's own tools (evmctl,
# openssl, tpm2-tools, swtpm, qemu, ...: packages/imakit/scripts/install-deps.sh) and what the
# other packages' tests use. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../packages/imakit/scripts/install-deps.sh"

#!/bin/bash
# Run ima-evm-utils' own black-box tests (tests/sign_verify.test, tests/ima_hash.test) with
# `imakit evmctl` standing in for evmctl, or with the system's evmctl for comparison.
#
#   scripts/upstream-evmctl-tests.sh UPSTREAM_CHECKOUT [imakit|system] [TEST...]
#
# UPSTREAM_CHECKOUT is a checkout of github.com/linux-integrity/ima-evm-utils (e.g. v1.6.2) kept
# outside this repository; nothing of it is copied here. The tests run in a temporary copy of its
# tests/ directory (they generate keys and files next to themselves), so the checkout stays clean
# and two runs can go side by side. Prints each test's PASS/SKIP/FAIL line and wall time.
set -u
upstream=${1:?usage: $0 UPSTREAM_CHECKOUT [imakit|system] [TEST...]}
mode=${2:-imakit}
shift $(( $# >= 2 ? 2 : 1 ))
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(ima_hash.test sign_verify.test)
[ -f "$upstream/tests/functions.sh" ] || { echo "$upstream has no tests/functions.sh" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$upstream/tests" "$work/tests"
mkdir -p "$work/bin"
case $mode in
  imakit)
    # the tests run `evmctl ...` from PATH (PATH=../src:$PATH, and ../src has no evmctl here)
    printf '#!/bin/sh\nexec node "%s/bin/imakit.js" evmctl "$@"\n' "$here" > "$work/bin/evmctl"
    chmod +x "$work/bin/evmctl"
    PATH="$work/bin:$PATH" ;;
  system)
    command -v evmctl >/dev/null || { echo "no evmctl on PATH" >&2; exit 5; } ;;
  *) echo "mode must be imakit or system" >&2; exit 2 ;;
esac
export PATH
status=0
for t in "${tests[@]}"; do
  start=$(date +%s.%N)
  out=$(cd "$work/tests" && bash "./$t" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  echo "$out" | sed "s|$work|\$WORK|g" > "$work/$t.log"
  summary=$(grep -a -o 'PASS: [0-9]* SKIP: [0-9]* FAIL: [0-9]*' "$work/$t.log" | tail -1)
  printf '%s [%s]: %s, exit %d, %.1f s\n' "$t" "$mode" "${summary:-no summary}" "$rc" "$(echo "$end - $start" | bc)"
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    status=1
    grep -a -B2 -A8 -E 'failed hard|wrongly succeeded|failed  with|Did not find|FAIL' "$work/$t.log" | head -60
  fi
  [ -n "${KEEP_LOGS:-}" ] && cp "$work/$t.log" "$KEEP_LOGS/$t.$mode.log"
done
exit $status

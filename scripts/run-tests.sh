#!/usr/bin/env bash
# Runs every test serially: they share one kernel (XDP attachments, pins, namespaces).
#
# --unit: only the test files marked with a line `// test-unit: ...` (make test-unit): they need
# no root and no kernel, so they run as any user and side by side, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --unit ]]; then
  # The marked sources, as their compiled files under dist/.
  mapfile -t files < <(grep -rl --include='*.test.ts' '^// test-unit:' test | sed -e 's|^|dist/|' -e 's|\.ts$|.js|' | sort)
  ((${#files[@]})) || { echo "run-tests: no test file is marked '// test-unit:'" >&2; exit 1; }
  exec node --test --test-concurrency="$(nproc)" --test-timeout=120000 "${files[@]}"
fi
if [[ $EUID -ne 0 ]]; then
  echo "run-tests: the tests load BPF programs and create network namespaces: run them as root" >&2
  exit 1
fi
files=("$@")
# Only *.test.js: node --test would also run every helper module under a test/ directory.
((${#files[@]})) || mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"

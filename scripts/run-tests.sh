#!/usr/bin/env bash
# Runs every test serially: they share one kernel (XDP attachments, pins, namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
  echo "run-tests: the tests load BPF programs and create network namespaces: run them as root" >&2
  exit 1
fi
files=("$@")
# Only *.test.js: node --test would also run every helper module under a test/ directory.
((${#files[@]})) || mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"

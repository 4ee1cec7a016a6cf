#!/usr/bin/env bash
# Runs every benchmark (dist/bench/*.js) one after the other and prints their JSON results as
# one JSON array on stdout; progress goes to stderr. Each benchmark builds and removes its own lab.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
  echo "run-bench: the benchmarks load XDP programs and create network namespaces: run them as root" >&2
  exit 1
fi
shopt -s nullglob
benches=("$@")
((${#benches[@]})) || benches=(dist/bench/*.js)
((${#benches[@]})) || { echo "run-bench: no benchmarks in dist/bench/; run make first" >&2; exit 1; }
failed=0
first=1
echo "["
for b in "${benches[@]}"; do
  echo "run-bench: $b" >&2
  if out=$(node "$b"); then
    ((first)) || echo ","
    first=0
    printf '%s\n' "$out"
  else
    echo "run-bench: $b failed" >&2
    failed=1
  fi
done
echo "]"
exit "$failed"

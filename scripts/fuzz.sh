#!/usr/bin/env bash
# make fuzz: runs every native fuzz target for FUZZTIME each (default 20s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-20s}
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($t)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg"; then
      echo "FAILED: $pkg $target"
      fail=1
    fi
  done
done
exit $fail

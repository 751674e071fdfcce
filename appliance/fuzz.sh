#!/usr/bin/env bash
# Runs every go test -fuzz target of the repository for the given time
# each (default 60s), one after another. Exit status non-zero on a crash;
# the crashing input is kept under the package's testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "== $pkg $target ($t)"
    if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" -parallel "${FUZZ_PARALLEL:-2}" "$pkg"; then
      status=1
    fi
  done
done
exit $status

#!/usr/bin/env bash
# Runs every test in the repository: vet, then the whole suite under the
# race detector. CI runs exactly this (see .ci/run); so should you.
#
# Each package is reported as it finishes; at the end come the skipped
# tests with their reasons (a container or Python test that could not run
# is shouted), the failures, and a last line "N passed, N failed, N
# skipped". Extra arguments go to `go test` (e.g. -short, -run TestX).
# The exit status is non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
echo "==> go vet ./..."
go vet ./...
# Build the summariser before the run, so a broken summariser fails here
# and not after minutes of tests.
summary_bin="$(mktemp -d)/testsummary"
trap 'rm -rf "$(dirname "$summary_bin")"' EXIT
go build -o "$summary_bin" ./scripts/testsummary
# The side-by-side benchmark in its seconds-long smoke mode, against ours
# only (no etcd in CI): proves scripts/bench.sh works. It runs first so
# that the summary stays the last line; its failure fails the run.
smoke=0
if [ "$#" -eq 0 ]; then
  echo "==> scripts/bench.sh --smoke"
  scripts/bench.sh --smoke || smoke=$?
  [ "$smoke" -eq 0 ] || echo "!!! scripts/bench.sh --smoke FAILED (exit $smoke)"
fi
echo "==> go test -race -count=1 ./... $* (each package as it finishes)"
rc=0
go test -json -race -count=1 -timeout 15m "$@" ./... 2>&1 | "$summary_bin" || rc=$?
[ "$smoke" -eq 0 ] || rc=1
exit "$rc"

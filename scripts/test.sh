#!/usr/bin/env bash
# Runs every test in the repository: vet, then the whole suite under the
# race detector. CI runs exactly this (see .ci/run); so should you.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
go vet ./...
go test -race -count=1 -timeout 15m "$@" ./...

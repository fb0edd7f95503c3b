#!/usr/bin/env bash
# Chaos run: three real doubledutch processes on loopback, a seeded fault
# schedule (kill -9, SIGSTOP, partitions through a fault-injecting proxy,
# rolling restarts, leadership churn, paused clients) under a recorded
# workload, then the checks (linearizability with porcupine, fencing,
# belief windows, lost releases, recovery, replica agreement). Prints the
# report; exits 1 on any violation. Linux only (it binds 127.0.0.11-13).
#
#   scripts/chaos.sh --duration 60s --seed 42
#   scripts/chaos.sh --duration 10m --seed 7 --faults kill,stop,partition,bridge
#   scripts/chaos.sh --duration 20s --broken     # the broken server: must FAIL
#
# Flags (all optional; see `go run ./cmd/ddchaos -h`):
#   --duration D   how long to inject faults (60s)
#   --seed N       schedule and client seed (random; printed in the report)
#   --faults LIST  kill,stop,partition,bridge,restart,churn,client-pause (all)
#   --clients N    clients (8)
#   --attempt-timeout D  client timeout per attempt beyond its wait (2.5s)
#   --dir DIR      keep data, node logs, history and visualisation there
#   --keep         keep the temporary work dir even when the run passes
#   --broken       build with -tags ddbroken (leader clock runs 3x fast)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
exec go run ./cmd/ddchaos "$@"

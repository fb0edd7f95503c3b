#!/usr/bin/env bash
# Side-by-side benchmark: etcd's lock recipe and DoubleDutch on this machine,
# three processes each on loopback, fsync on, one system after the other,
# the same scenarios and worker counts, one table with the ratio per cell.
#
#   scripts/bench.sh [options]
#     --smoke              seconds-long check of ours only (no etcd): for CI
#     --duration D         measured time per cell (default 6s)
#     --warmup D           unmeasured warm-up per cell (default 1s)
#     --workers LIST       worker counts (default 1,8,64,256)
#     --scenarios LIST     uncontended,contended (default both)
#     --no-etcd            measure ours only
#     --no-failover        skip the failover mode (leader kill -9 under load)
#     --reps N             measurements per cell and system (default 3)
#
# Both clusters stay up while the cells run, and each cell is measured
# etcd, ours, etcd, ours... (reps times each, alternating which goes
# first): this machine's disk and CPU drift by 2x within minutes, and one
# system measured minutes after the other would carry that drift into the
# ratio. The table shows each system's median over its reps, and the
# ratio of the medians.
#
# etcd and its lock load generator (etcdlock) come from the benchmark kit
# in ../shared/bench (BENCH_KIT overrides): built with its etcd/build.sh
# into /tmp/etcdref/bin when missing (about a minute). Ours: three
# `doubledutch serve` processes with production flags (plain HTTP, since the
# kit's etcd runs without TLS too) and cmd/ddload, the same scenarios as
# etcdlock. CPU seconds are those of the three server processes, from
# /proc, per 1,000 pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$PATH:/usr/local/go/bin"

smoke=0 etcd=1 failover=1 reps=3
duration=6s warmup=1s workers=1,8,64,256 scenarios=uncontended,contended
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --workers) workers=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --no-etcd) etcd=0 ;;
    --no-failover) failover=0 ;;
    --reps) reps=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  etcd=0 duration=1s warmup=200ms workers=1,8 reps=1
fi

# The kit sits next to the checkout (../shared/bench), or one level up
# for a worktree in a subdirectory.
kit=${BENCH_KIT:-}
if [ -z "$kit" ]; then
  for k in "$root/../shared/bench" "$root/../../shared/bench"; do
    if [ -d "$k" ]; then kit=$(cd "$k" && pwd); break; fi
  done
  kit=${kit:-$root/../shared/bench}
fi
etcdbin=${ETCD_BIN:-/tmp/etcdref/bin}
work=$(mktemp -d /tmp/ddbench.XXXXXX)
pids=()
cleanup() {
  for n in 1 2 3; do
    [ -f "$work/n$n.pid" ] && kill -9 "$(cat "$work/n$n.pid")" 2>/dev/null || true
  done
  if [ "$etcd" = 1 ] && [ -x "$kit/etcd/cluster.sh" ]; then
    BIN=$etcdbin "$kit/etcd/cluster.sh" down >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$etcd" = 1 ]; then
  if [ ! -x "$kit/etcd/build.sh" ]; then
    echo "bench.sh: the benchmark kit is not at $kit (set BENCH_KIT, or use --no-etcd)" >&2
    exit 2
  fi
  if [ ! -x "$etcdbin/etcd" ] || [ ! -x "$etcdbin/etcdlock" ]; then
    echo "==> building etcd and etcdlock into $etcdbin (about a minute)"
    "$kit/etcd/build.sh" "$etcdbin"
  fi
fi

echo "==> building doubledutch and ddload"
go build -o "$work/doubledutch" ./cmd/doubledutch
go build -o "$work/ddload" ./cmd/ddload

# free_ports N prints N free TCP ports on 127.0.0.1.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r -a ports <<<"$(free_ports 6)"
api=("${ports[0]}" "${ports[1]}" "${ports[2]}")
raft=("${ports[3]}" "${ports[4]}" "${ports[5]}")
voters="n1=127.0.0.1:${raft[0]},n2=127.0.0.1:${raft[1]},n3=127.0.0.1:${raft[2]}"
endpoints="http://127.0.0.1:${api[0]},http://127.0.0.1:${api[1]},http://127.0.0.1:${api[2]}"
key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$key" >"$work/key"

# One start script per node, so the failover mode can restart a node the
# same way.
for n in 1 2 3; do
  i=$((n - 1))
  cat >"$work/n$n.sh" <<SH
#!/bin/sh
nohup "$work/doubledutch" serve --node-id n$n --listen 127.0.0.1:${api[$i]} \\
  --api-url http://127.0.0.1:${api[$i]} --raft-bind 127.0.0.1:${raft[$i]} --voters $voters \\
  --data-dir "$work/data/n$n" --http --api-key-file "$work/key" --log-level warn \\
  >>"$work/n$n.log" 2>&1 &
echo \$! >"$work/n$n.pid"
SH
  chmod +x "$work/n$n.sh"
done

ours_up() {
  for n in 1 2 3; do "$work/n$n.sh"; done
  for _ in $(seq 100); do
    for n in 1 2 3; do
      if curl -fs "http://127.0.0.1:${api[$((n - 1))]}/v1/health" 2>/dev/null | grep -q '"is_leader":true'; then
        return 0
      fi
    done
    sleep 0.1
  done
  echo "bench.sh: our cluster elected no leader; logs:" >&2
  tail -n 20 "$work"/n*.log >&2
  exit 1
}

# cpu_seconds PIDFILE... prints the user+system CPU seconds of the processes.
cpu_seconds() {
  local total=0 tck
  tck=$(getconf CLK_TCK)
  for f in "$@"; do
    local pid
    pid=$(cat "$f" 2>/dev/null) || continue
    [ -r "/proc/$pid/stat" ] || continue
    # Fields 14 and 15 (utime, stime) after the command name in parentheses.
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  awk -v t="$total" -v k="$tck" 'BEGIN { printf "%.2f", t / k }'
}

declare -A pairs p50 cpu
# measure SYSTEM SCENARIO WORKERS REP: one measurement of one cell, its
# pairs/s, p50 and CPU, kept under [SYSTEM,SCENARIO,WORKERS,REP].
measure() {
  local sys=$1 sc=$2 w=$3 rep=$4 row c0 c1
  if [ "$sys" = floor ]; then
    c0=0 c1=0
    row=$("$work/ddload" -mode floor -workers "$w" -duration "$duration" -warmup "$warmup" | grep "^| $sc |")
  elif [ "$sys" = ours ]; then
    c0=$(cpu_seconds "$work"/n?.pid)
    row=$(DOUBLEDUTCH_API_KEY=$key "$work/ddload" -endpoints "$endpoints" -scenarios "$sc" -workers "$w" \
      -duration "$duration" -warmup "$warmup" | grep "^| $sc |")
    c1=$(cpu_seconds "$work"/n?.pid)
  else
    c0=$(cpu_seconds /tmp/etcdref/data/n?.pid)
    row=$("$etcdbin/etcdlock" -endpoints "$(BIN=$etcdbin "$kit/etcd/cluster.sh" endpoints)" -scenarios "$sc" -workers "$w" \
      -duration "$duration" -warmup "$warmup" | grep "^| $sc |")
    c1=$(cpu_seconds /tmp/etcdref/data/n?.pid)
  fi
  local ps p dur k=$sys,$sc,$w,$rep
  ps=$(echo "$row" | awk -F'|' '{gsub(/ /,"",$4); print $4}')
  p=$(echo "$row" | awk -F'|' '{gsub(/ |ms/,"",$5); print $5}')
  dur=$(awk -v d="${duration%s}" 'BEGIN { print d + 0 }')
  pairs[$k]=$ps
  p50[$k]=$p
  cpu[$k]=$(awk -v a="$c0" -v b="$c1" -v n="$ps" -v d="$dur" \
    'BEGIN { if (n * d > 0 && b > a) printf "%.3f", (b - a) / (n * d) * 1000; else print "-" }')
  echo "  $sys $sc $w (rep $rep): $ps pairs/s, p50 $p ms" >&2
}

# median ARRAY SYSTEM SCENARIO WORKERS prints the median over the reps of
# one cell's values in the named associative array ("-" when none), in
# the array's own format.
median() {
  local fmt
  case $1 in pairs) fmt=%.0f ;; p50) fmt=%.2f ;; *) fmt=%.3f ;; esac
  local -n arr=$1
  local vals=() r
  for r in $(seq "$reps"); do
    [ -n "${arr[$2,$3,$4,$r]:-}" ] && [ "${arr[$2,$3,$4,$r]}" != - ] && vals+=("${arr[$2,$3,$4,$r]}")
  done
  if [ ${#vals[@]} -eq 0 ]; then echo -; return; fi
  printf '%s\n' "${vals[@]}" | sort -g | awk -v f="$fmt" '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f "\n", m }'
}

# run_cells measures every cell reps times per system, alternating the
# systems (and which of them goes first) so that drift hits both alike.
run_cells() {
  local systems sc w r
  for sc in ${scenarios//,/ }; do
    for w in ${workers//,/ }; do
      systems=(ours)
      [ "$etcd" = 1 ] && systems=(etcd ours)
      # The HTTP floor (ddload -mode floor): HTTP alone, no Raft.
      [ "$sc" = uncontended ] && [ "$smoke" = 0 ] && systems+=(floor)
      for r in $(seq "$reps"); do
        if [ $((r % 2)) = 1 ]; then
          for sys in "${systems[@]}"; do measure "$sys" "$sc" "$w" "$r"; done
        else
          for ((i = ${#systems[@]} - 1; i >= 0; i--)); do measure "${systems[$i]}" "$sc" "$w" "$r"; done
        fi
      done
    done
  done
}

failover_tables=""
if [ "$etcd" = 1 ]; then
  echo "==> etcd"
  BIN=$etcdbin "$kit/etcd/cluster.sh" up
fi
echo "==> doubledutch"
ours_up
echo "==> cells, $reps measurement(s) per cell and system"
run_cells

if [ "$etcd" = 1 ]; then
  if [ "$failover" = 1 ]; then
    failover_tables+=$'\netcd:\n'
    failover_tables+=$("$etcdbin/etcdlock" -endpoints "$(BIN=$etcdbin "$kit/etcd/cluster.sh" endpoints)" -mode failover \
      -scenarios uncontended -workers 8 -reps 3 \
      -kill-cmd "BIN=$etcdbin $kit/etcd/cluster.sh kill \${LEADER_NAME#n}" \
      -restart-cmd "BIN=$etcdbin $kit/etcd/cluster.sh start \${LEADER_NAME#n}" | grep '^|')
  fi
  BIN=$etcdbin "$kit/etcd/cluster.sh" down >/dev/null
fi
if [ "$failover" = 1 ]; then
  freps=3 settle=3s
  [ "$smoke" = 1 ] && freps=1 settle=1s
  failover_tables+=$'\ndoubledutch:\n'
  failover_tables+=$(DOUBLEDUTCH_API_KEY=$key "$work/ddload" -endpoints "$endpoints" -mode failover -workers 8 \
    -reps "$freps" -settle "$settle" \
    -kill-cmd "kill -9 \$(cat $work/\$LEADER_NAME.pid)" -restart-cmd "$work/\$LEADER_NAME.sh" | grep '^|')
fi

echo
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'): scripts/bench.sh --duration $duration --workers $workers --scenarios $scenarios --reps $reps (medians)"
echo "| scenario | workers | etcd pairs/s | ours pairs/s | ours / etcd | etcd p50 ms | ours p50 ms | etcd CPU s / 1k pairs | ours CPU s / 1k pairs | HTTP floor pairs/s | floor / etcd |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
status=0
for sc in ${scenarios//,/ }; do
  for w in ${workers//,/ }; do
    e=$(median pairs etcd "$sc" "$w") o=$(median pairs ours "$sc" "$w")
    f=$(median pairs floor "$sc" "$w")
    ratio=$(awk -v e="$e" -v o="$o" 'BEGIN { if (e + 0 > 0) printf "%.2f", o / e; else print "-" }')
    fratio=$(awk -v e="$e" -v o="$f" 'BEGIN { if (e + 0 > 0 && o + 0 > 0) printf "%.2f", o / e; else print "-" }')
    echo "| $sc | $w | $e | $o | $ratio | $(median p50 etcd "$sc" "$w") | $(median p50 ours "$sc" "$w") | $(median cpu etcd "$sc" "$w") | $(median cpu ours "$sc" "$w") | $f | $fratio |"
    if [ "${o%.*}" = "" ] || [ "${o%.*}" -le 0 ] 2>/dev/null; then status=1; fi
  done
done
echo
echo "HTTP floor: ddload -mode floor, a canned in-process net/http server (no Raft, no fsync,"
echo "no lock logic) driven by the same generator, both cores to itself: the most any"
echo "HTTP/1.1 lock service with one kept-alive connection per worker answers on this machine."
if [ -n "$failover_tables" ]; then
  echo
  echo "Failover (leader kill -9 under load, time to the next grant):"
  echo "$failover_tables"
  if echo "$failover_tables" | grep -q '^| [0-9]* | [^|]* | -1 |'; then
    status=1
    # A repetition without a grant: keep what the nodes logged.
    mkdir -p /tmp/ddbench-failed && cp "$work"/n*.log /tmp/ddbench-failed/
    echo "bench.sh: a failover repetition saw no grant; node logs kept in /tmp/ddbench-failed" >&2
  fi
fi
exit $status

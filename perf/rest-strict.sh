#!/usr/bin/env bash
# The cost of strict HTTP/1.1 (--strict-http, docs/rest.md "HTTP/1.1 edge cases"): two
# `actorserve serve` processes serving the bundled `add`, one plain (uWS alone), one with
# --strict-http, benchmarked one at a time with wrk, interleaved (plain, strict, plain, strict)
# at each concurrency, so that both see the same machine. Prints one table per run and the
# load average before and after.
#   perf/rest-strict.sh [duration, default 5s] [rounds, default 2] [concurrency list, default "1 64"]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-5s}
ROUNDS=${2:-2}
LEVELS=${3:-1 64}
CLI=bin/actorserve.js
log=$(mktemp -d)
trap 'kill $plain_pid $strict_pid 2>/dev/null || true; rm -rf "$log"' EXIT

start() { # name flags...
  local name=$1; shift
  node "$CLI" serve --servables add --no-grpc --rest-address 127.0.0.1:0 "$@" >"$log/$name" 2>&1 &
  echo $!
}
port_of() { # name
  for _ in $(seq 1 600); do
    local p
    p=$(grep -oE 'RESTful server listening on http://127\.0\.0\.1:[0-9]+' "$log/$1" | grep -oE '[0-9]+$' || true)
    if [ -n "$p" ] && grep -q 'serving add from' "$log/$1"; then echo "$p"; return; fi
    sleep 0.1
  done
  echo "server $1 did not start: $(cat "$log/$1")" >&2; exit 1
}
plain_pid=$(start plain)
strict_pid=$(start strict --strict-http)
plain_port=$(port_of plain)
strict_port=$(port_of strict)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); nproc $(nproc)"
for round in $(seq 1 "$ROUNDS"); do
  for c in $LEVELS; do
    for mode in plain strict; do
      if [ $mode = plain ]; then port=$plain_port; pid=$plain_pid; else port=$strict_port; pid=$strict_pid; fi
      echo "== round $round, c=$c, $mode (load average $(cut -d' ' -f1 /proc/loadavg))"
      node "$CLI" bench "127.0.0.1:$port" --servable add --method add_common --generator wrk \
        --concurrency "$c" --workers 1 --duration "$DURATION" --warmup 1s --server-pid "$pid" 2>/dev/null | grep -E '^\s*(conc|[0-9])' || true
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

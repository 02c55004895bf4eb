#!/usr/bin/env bash
# What a durable audit write costs on this machine, whatever writes it.
#
# Needs a kcm built with scripts/experiments/audit-floor.patch applied (the patch is
# an experiment and never merged). Starts four servers and drives Encrypt against
# each in turn, alternated, at each concurrency:
#   off    audit = false
#   sleep  the audit writer only waits 200 us per batch (no I/O at all)
#   dsync  one O_DSYNC write of the batch to a preallocated file (no SQLite)
#   on     the real writer (SQLite, fsync per batch)
#
#   git apply scripts/experiments/audit-floor.patch && cargo build --release -p kcm
#   scripts/experiments/audit-floor.sh [seconds per run, default 5] [concurrencies, default "32 128 256"]
#   git checkout crates/kcm-core/src/audit/writer.rs
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-5}"
LEVELS="${2:-32 128 256}"
KCM=./target/release/kcm
WORK=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A PORT KEY
start() { # name env...
  local name=$1; shift
  PORT[$name]=$(free_port)
  env "$@" KCM_LOG=error "$KCM" serve --data-dir "$WORK/$name" --listen "127.0.0.1:${PORT[$name]}" \
    2>"$WORK/$name.log" &
  PIDS+=($!)
}
start off KCM_AUDIT=false
start sleep KCM_EXPERIMENT_AUDIT_SLEEP_US=200
start dsync KCM_EXPERIMENT_AUDIT_DSYNC_FILE="$WORK/dsync.journal"
start on
for name in off sleep dsync on; do
  for _ in $(seq 100); do [ -f "$WORK/$name/credentials" ] && break; sleep 0.1; done
  sleep 0.3
  KEY[$name]=$("$KCM" --endpoint "http://127.0.0.1:${PORT[$name]}" --credentials-file "$WORK/$name/credentials" \
    --output json key create --description floor | python3 -c 'import json,sys; print(json.load(sys.stdin)["KeyId"])')
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-6s %-6s %10s %10s\n' conns server 'req/s' 'p50 us'
for c in $LEVELS; do
  for round in 1 2; do
    for name in off sleep dsync on; do
      "$KCM" bench --endpoint "http://127.0.0.1:${PORT[$name]}" --credentials-file "$WORK/$name/credentials" \
        --operation encrypt --key-id "${KEY[$name]}" --concurrency "$c" --duration "$DURATION" --warmup 1 \
        --output json 2>/dev/null | python3 -c "
import json, sys
r = json.load(sys.stdin); l = r.get('latency_us') or r['latency']
print(f'{$c:<6} {\"$name\":<6} {r[\"requests_per_sec\"]:>10.0f} {l[\"p50\"]:>10}')"
    done
  done
done

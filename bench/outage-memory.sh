#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# outage-memory.sh - is the bridge's memory flat during a long Redis outage
# under a steady producer? (issue 5, "Bounded memory").
#
# Runs inside scripts/with-stack.sh (a real broker and redis-server). The
# bridge reaches Redis through a socat proxy; the producer sends RATE records
# of SIZE bytes per second throughout. Phases: WARM s with Redis up, OUTAGE s
# with the proxy down (the bridge holds its batch and pauses Kafka), then
# Redis back until every record is published. The bridge's resident memory
# (VmRSS) is sampled every second and summarised per phase, next to the bytes
# produced during the outage, so the figure reads as a ratio measured in one
# run. It also checks that no record was lost (the bridge's own counters).
#
# usage: scripts/with-stack.sh bench/outage-memory.sh BUILD_DIR
# env:   RATE (2000/s), SIZE (1024 bytes), WARM (10 s), OUTAGE (45 s)
set -euo pipefail
. "$(dirname "$0")/../scripts/loopback.sh"
build="${1:-build}"
bin="$build/kafka-redis-bridge"
rate="${RATE:-2000}" size="${SIZE:-1024}" warm="${WARM:-10}" outage="${OUTAGE:-45}"
: "${K2R_TEST_KAFKA_BROKERS:?run me under scripts/with-stack.sh}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

proxy_port="$(free_port)"
http_port="$(free_port)"
start_proxy() {
    socat "TCP-LISTEN:$proxy_port,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$K2R_TEST_REDIS_PORT" &
    proxy=$!
    pids+=("$proxy")
}
stop_proxy() { kill "$proxy"; wait "$proxy" 2>/dev/null || true; pkill -f "TCP-LISTEN:$proxy_port" || true; }

topic="bench-outage-$$"
cat >"$work/bridge.yaml" <<EOF
kafka:
  brokers: $K2R_TEST_KAFKA_BROKERS
  group_id: bench-outage-$$
  topics: [$topic]
  properties: {auto.offset.reset: earliest}
redis:
  url: redis://127.0.0.1:$proxy_port
  reconnect_backoff_ms: 100
  reconnect_backoff_max_ms: 1000
http: {listen: "127.0.0.1:$http_port"}
log: {format: text}
rules:
  - {name: bench, topic: $topic, type: kind, id: n}
EOF

# One chunk of `rate` records: {"kind":"bench","n":N,"pad":"xxx..."} of about SIZE bytes.
pad="$(head -c "$((size - 40))" /dev/zero | tr '\0' x)"
chunk() {
    local base="$1"
    awk -v b="$base" -v r="$rate" -v pad="$pad" \
        'BEGIN { for (i = 0; i < r; i++) printf "{\"kind\":\"bench\",\"n\":%d,\"pad\":\"%s\"}\n", b + i, pad }' \
        >"$work/chunk"
    kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -l "$work/chunk"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

start_proxy
chunk 0 # creates the topic
"$bin" run -c "$work/bridge.yaml" 2>"$work/bridge.log" &
bridge=$!
pids+=("$bridge")
produced="$rate"

# phase NAME SECONDS: produce a chunk and sample RSS every second.
phase() {
    local name="$1" secs="$2" min=0 max=0 r
    for ((s = 0; s < secs; s++)); do
        local t0=$SECONDS
        chunk "$produced"
        produced=$((produced + rate))
        r="$(rss_kb "$bridge")"
        [ "$min" -eq 0 ] || [ "$r" -lt "$min" ] && min="$r"
        [ "$r" -gt "$max" ] && max="$r"
        # Load shaping, not synchronisation: one chunk per second.
        while [ "$SECONDS" -eq "$t0" ]; do sleep 0.05; done
    done
    printf '%-8s %4ss  RSS min %6.1f MiB  max %6.1f MiB\n' "$name" "$secs" \
        "$(mib "$min")" "$(mib "$max")"
    eval "${name}_max=$max"
}

echo "outage-memory: $rate records/s of $size bytes; Redis cut for ${outage}s"
phase warm "$warm"
stop_proxy
phase outage "$outage"
start_proxy
# Redis back: wait until every record produced has been published.
deadline=$((SECONDS + 300))
published=0
while [ "$published" -lt "$produced" ] && [ "$SECONDS" -lt "$deadline" ]; do
    published="$(metric "$http_port" k2r_notifications_published_total)"
    sleep 0.5 # polling pace, not synchronisation: the loop ends on the count
done
after="$(rss_kb "$bridge")"
kill -TERM "$bridge"
wait "$bridge" || true
outage_mib=$((rate * size * outage / 1048576))
printf 'after    RSS %6.1f MiB once all %d were published\n' "$(mib "$after")" "$published"
echo "produced during the outage: $outage_mib MiB; RSS max during it minus max during warm-up:" \
    "$(((outage_max - warm_max) / 1024)) MiB"
echo "records produced: $produced; published: $published; lost: $((produced - published))"
[ "$published" -ge "$produced" ]

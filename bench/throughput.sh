#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# throughput.sh - how fast does the bridge drain a backlog, end to end?
#
# Runs inside scripts/with-stack.sh (a real broker and redis-server). Produces
# COUNT seed-shaped events (about 150 bytes, 3 partitions) first, then starts
# the bridge and times it from start until /metrics says every record was
# published (the wall clock includes joining the group). Reports records per
# second, the bridge's CPU time per record and its peak resident memory
# (VmHWM), from /proc, next to the same
# figures for the simplest possible pipeline on the same stack: kcat reading
# the topic into `redis-cli --pipe` with PUBLISH commands formed by awk (no
# consumer group, no offsets, no mapping rules: a floor, not a peer). The
# bridge runs four times over the same records, each time as a new group:
# to the plaintext redis-server, twice over TLS (rediss://, the server
# verified) to the stack's TLS redis-server, then plaintext again, so the
# lines show what TLS costs. When the stack has a Redis Cluster, the bridge
# also runs with redis.sharded over its three primaries (SPUBLISH routed by
# slot), between plaintext runs to one node.
#
# usage: scripts/with-stack.sh bench/throughput.sh BUILD_DIR
# env:   COUNT (200000); PROPS (extra librdkafka properties, "a: b, c: d") and
#        LIMITS (a limits: body, "max_inflight_records: 5000") to try settings
set -euo pipefail
. "$(dirname "$0")/../scripts/loopback.sh"
build="${1:-build}"
bin="$build/kafka-redis-bridge"
count="${COUNT:-200000}"
: "${K2R_TEST_KAFKA_BROKERS:?run me under scripts/with-stack.sh}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

http_port="$(free_port)"
now_ms() { date +%s%3N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

topic="bench-tput-$$"
echo "throughput: producing $count events to $topic"
awk -v n="$count" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"id\":\"e%d\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"u%d\",\"payload\":{\"ref\":\"refs/heads/main\",\"size\":%d}}\n", i, i % 1000, i % 7
}' >"$work/events"
kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -p 0 -l "$work/events"

# Built apart: inside the here-document, the braces of a limits mapping would
# end a ${LIMITS:+...} expansion early and leave a stray "}" in the YAML.
limits_line=""
[ -z "${LIMITS:-}" ] || limits_line="limits: {$LIMITS}"
# run_bridge LABEL URL TLS_LINE: one timed run of the bridge, as group LABEL.
run_bridge() {
    local label="$1" url="$2" tls="$3" start bridge published deadline elapsed ticks hz
    local assigned assigned_ms
    cat >"$work/bridge-$label.yaml" <<EOF
kafka:
  brokers: $K2R_TEST_KAFKA_BROKERS
  group_id: bench-tput-$label-$$
  topics: [$topic]
  properties: {auto.offset.reset: earliest${PROPS:+, $PROPS}}
redis:
  url: $url
$tls
$limits_line
http: {listen: "127.0.0.1:$http_port"}
log: {format: text}
rules:
  - {name: bench, topic: $topic, type: source_type, id: source_id}
EOF
    start="$(now_ms)"
    K2R_LOG_FORMAT=text "$bin" run -c "$work/bridge-$label.yaml" 2>"$work/bridge-$label.log" &
    bridge=$!
    pids+=("$bridge")
    published=0
    deadline=$((SECONDS + 600))
    while [ "$published" -lt "$count" ] && [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$bridge" 2>/dev/null; then
            echo "throughput: the bridge exited early:" >&2
            cat "$work/bridge-$label.log" >&2
            exit 1
        fi
        sleep 0.1 # polling pace; the loop ends on the count
        published="$(metric "$http_port" k2r_notifications_published_total)"
    done
    elapsed=$(($(now_ms) - start))
    ticks="$(cpu_ticks "$bridge")"
    peak_kib="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$bridge/status")"
    kill -TERM "$bridge"
    wait "$bridge" || true
    hz="$(getconf CLK_TCK)"
    # From the assignment on (the group join is not the bridge's speed).
    assigned="$(grep -m1 'kafka: assigned' "$work/bridge-$label.log" | cut -c1-24)"
    assigned_ms="$(date -d "$assigned" +%s%3N)"
    awk -v l="$label" -v n="$published" -v ms="$elapsed" -v t="$ticks" -v hz="$hz" \
        -v join="$((assigned_ms - start))" -v peak="$peak_kib" 'BEGIN {
        printf "bridge (%s): %d published in %.2f s from start (%.0f records/s), %.2f s from the assignment (%.0f records/s); CPU %.2f s, %.1f us/record; peak RSS %.1f MiB\n",
            l, n, ms / 1000, n / (ms / 1000), (ms - join) / 1000, n / ((ms - join) / 1000), t / hz, t / hz * 1e6 / n, peak / 1024 }'
    [ "$published" -ge "$count" ]
}

plain_url="redis://127.0.0.1:$K2R_TEST_REDIS_PORT"
if [ -n "${K2R_TEST_REDIS_TLS_PORT:-}" ]; then
    # ABBA: the first run reads the topic cold, the later ones warm, so
    # each kind gets one early and one late run.
    tls_url="rediss://127.0.0.1:$K2R_TEST_REDIS_TLS_PORT"
    tls_line="  tls: {ca_file: $K2R_TEST_TLS_DIR/ca.crt}"
    run_bridge plaintext-1 "$plain_url" ""
    run_bridge tls-1 "$tls_url" "$tls_line"
    run_bridge tls-2 "$tls_url" "$tls_line"
    run_bridge plaintext-2 "$plain_url" ""
    if [ -n "${K2R_TEST_CLUSTER_ADDRS:-}" ]; then
        # SPUBLISH over the stack's three shards (one connection per
        # primary, routed by slot) against PUBLISH on one node, both ways
        # round: the bench's channels (events:user:uN) spread over all three.
        seeds="\"${K2R_TEST_CLUSTER_ADDRS//,/\", \"}\""
        cluster_lines="  sharded: true
  cluster: {addresses: [$seeds]}"
        run_bridge cluster-sharded-1 "redis://127.0.0.1" "$cluster_lines"
        run_bridge plaintext-3 "$plain_url" ""
        run_bridge cluster-sharded-2 "redis://127.0.0.1" "$cluster_lines"
    fi
else
    run_bridge plaintext "$plain_url" ""
fi

# The floor: kcat | awk | redis-cli --pipe, same records, same Redis.
start="$(now_ms)"
kcat -C -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -o beginning -c "$count" -e -q -f '%s\n' |
    awk '{ ch = "events:user:x"; printf "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(ch), ch, length($0), $0 }' |
    redis-cli -p "$K2R_TEST_REDIS_PORT" --pipe >"$work/pipe.out" 2>&1
elapsed=$(($(now_ms) - start))
awk -v n="$count" -v ms="$elapsed" 'BEGIN {
    printf "kcat | redis-cli --pipe (no group, no offsets, no rules): %.2f s: %.0f records/s\n",
        ms / 1000, n / (ms / 1000) }'
tail -1 "$work/pipe.out"

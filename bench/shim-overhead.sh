#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# shim-overhead.sh - what the producer shim costs the producer that loads it.
#
# Runs inside scripts/with-stack.sh (a real broker and redis-server). kcat
# produces the same COUNT seed-shaped records (about 150 bytes, one
# partition, acks=all, linger.ms=5) from a file, ROUNDS times in each of
# three ways, interleaved so that the machine's moods hit each alike:
#   plain   no plugin
#   shim    plugin.library.paths=libk2r_shim.so, k2r.config with one rule,
#           Redis up: every record mapped and published by the shim's thread
#   down    the same with Redis unreachable (nothing listens on its port):
#           every notification dropped and counted
# and reports, per way, the median wall time of the whole produce (start to
# the last acknowledgement, kcat's exit), records per second, kcat's CPU
# seconds (user + system), the part of it spent outside the shim's thread
# (what the producer's own threads paid: the copy into the queue on the
# delivery path, and contention), and the ratio of each to plain. With the
# shim the counters kcat's stderr shows at close (k2r.debug) are summed:
# published, dropped at a full queue, dropped with Redis unavailable (or
# still queued when k2r.flush_timeout_ms ran out at close).
#
# On a machine whose cores are shared, the wall times move with the load of
# the moment (the shim's thread needs a core too); the CPU figures move
# less.
#
# usage: scripts/with-stack.sh bench/shim-overhead.sh [BUILD_DIR]
# env:   COUNT (200000), ROUNDS (3)
set -euo pipefail
. "$(dirname "$0")/../scripts/loopback.sh"
build="$(cd "${1:-build}" && pwd)"
plugin="$build/libk2r_shim.so"
count="${COUNT:-200000}"
rounds="${ROUNDS:-3}"
: "${K2R_TEST_KAFKA_BROKERS:?run me under scripts/with-stack.sh}"
[ -f "$plugin" ] || {
    echo "shim-overhead: no $plugin (make)" >&2
    exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

topic="bench-shim-$$"
awk -v n="$count" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"id\":\"e%d\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"u%d\",\"payload\":{\"ref\":\"refs/heads/main\",\"size\":%d}}\n", i, i % 1000, i % 7
}' >"$work/events"
kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -p 0 </dev/null

config() { # config FILE REDIS_PORT
    cat >"$1" <<EOF
kafka:
  brokers: $K2R_TEST_KAFKA_BROKERS
  group_id: bench-shim
  topics: [$topic]
redis:
  url: redis://127.0.0.1:$2
  connect_timeout_ms: 500
rules:
  - name: by-source
    topic: $topic
    type: source_type
    id: source_id
EOF
}
config "$work/up.yaml" "$K2R_TEST_REDIS_PORT"
config "$work/down.yaml" "$(free_port)"

# run WAY ROUND: one timed produce; appends "wall user sys shim_thread_cpu" to
# $work/WAY.times and the shim's counters at close to $work/WAY.counters.
run() {
    local way="$1" extra=() t thread
    case "$way" in
    shim) extra=(-X "plugin.library.paths=$plugin" -X "k2r.config=$work/up.yaml" -X k2r.debug=true) ;;
    down) extra=(-X "plugin.library.paths=$plugin" -X "k2r.config=$work/down.yaml" -X k2r.debug=true) ;;
    esac
    TIMEFORMAT='%R %U %S'
    # shellcheck disable=SC2086
    t="$( { time kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t "$topic" -p 0 -X acks=all \
        -X linger.ms=5 "${extra[@]}" -l "$work/events" 2>"$work/kcat.err"; } 2>&1)"
    thread="$(awk '{ for (i = 1; i < NF; i++) if ($i == "thread_cpu_us") print $(i + 1) / 1e6 }' "$work/kcat.err")"
    echo "$t ${thread:-0}" >>"$work/$way.times"
    grep -o 'closed: .*' "$work/kcat.err" >>"$work/$way.counters" || true
}

echo "shim-overhead: kcat producing $count records (~150 bytes) to $topic, $rounds rounds of plain, shim, down"
for ((r = 1; r <= rounds; r++)); do
    for way in plain shim down; do
        run "$way" "$r"
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base_wall="$(awk '{ print $1 }' "$work/plain.times" | median)"
base_cpu="$(awk '{ print $2 + $3 }' "$work/plain.times" | median)"
printf '%-6s %8s %10s %7s %11s %7s %6s %11s  %s\n' way wall_s records/s cpu_s producer_cpu wall_x cpu_x producer_x \
    "shim counters (summed over rounds)"
for way in plain shim down; do
    wall="$(awk '{ print $1 }' "$work/$way.times" | median)"
    cpu="$(awk '{ print $2 + $3 }' "$work/$way.times" | median)"
    pcpu="$(awk '{ print $2 + $3 - $4 }' "$work/$way.times" | median)"
    counters=""
    if [ -s "$work/$way.counters" ]; then
        counters="$(awk '{
            for (i = 1; i <= NF; i++) { gsub(",", "", $(i + 1)); if ($i == "published" || $i == "dropped_queue_full" || $i == "dropped_redis") s[$i] += $(i + 1) }
        } END { printf "published %d, dropped_queue_full %d, dropped_redis %d", s["published"], s["dropped_queue_full"], s["dropped_redis"] }' "$work/$way.counters")"
    fi
    awk -v w="$way" -v wall="$wall" -v cpu="$cpu" -v pcpu="$pcpu" -v bw="$base_wall" -v bc="$base_cpu" \
        -v n="$count" -v c="$counters" \
        'BEGIN { printf "%-6s %8.3f %10.0f %7.3f %11.3f %7.2f %6.2f %11.2f  %s\n", w, wall, n / wall, cpu, pcpu, wall / bw, cpu / bc, pcpu / bc, c }'
done

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh - the bridge end to end, live: starts a local Kafka broker and
# redis-server (scripts/with-stack.sh), runs the bridge with
# config/bridge.example.yaml (pointed at them through K2R_KAFKA_BROKERS and
# K2R_REDIS_URL), starts a subscriber on events:*, produces a stream of
# sample GitHub-style events into Kafka, and shows each notification as it
# arrives on Redis. Everything started here is stopped on every exit path.
#
# usage: scripts/demo.sh BIN   (make demo)
#   DEMO_EVENTS=N   how many events to produce (default 30)
set -euo pipefail
. "$(dirname "$0")/loopback.sh"
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-build/kafka-redis-bridge}")"

if [ -z "${K2R_TEST_STACK_DIR:-}" ]; then
    exec scripts/with-stack.sh "$0" "$bin"
fi

# Inside the stack from here on.
dir="$K2R_TEST_STACK_DIR"
events="${DEMO_EVENTS:-30}"
bridge_pid=""
sub_pid=""
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
    if [ -n "$bridge_pid" ] && kill -0 "$bridge_pid" 2>/dev/null; then
        kill -TERM "$bridge_pid" 2>/dev/null || true
        wait "$bridge_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "1. Kafka is at $K2R_TEST_KAFKA_BROKERS, Redis at 127.0.0.1:$K2R_TEST_REDIS_PORT"

export K2R_KAFKA_BROKERS="$K2R_TEST_KAFKA_BROKERS"
export K2R_REDIS_URL="redis://127.0.0.1:$K2R_TEST_REDIS_PORT"
say "2. Checking config/bridge.example.yaml"
"$bin" check -c config/bridge.example.yaml

say "3. Creating the topic github.events with its first event"
# A consumer does not create topics; the first produced event does (the
# broker auto-creates), and it becomes the first notification of the demo.
printf 'octo-org/hello-world\t{"id":"evt-0000","type":"CreateEvent","source_type":"repo","source_id":"octo-org/hello-world"}\n' |
    kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t github.events -K '\t'
events=$((events + 1))

say "4. Subscribing to events:* (what a WebSocket gateway would do)"
redis-cli -p "$K2R_TEST_REDIS_PORT" psubscribe 'events:*' >"$dir/sub.out" &
sub_pid=$!

for _ in $(seq 1 50); do
    [ "$(wc -l <"$dir/sub.out")" -ge 3 ] && break
    sleep 0.1 # waiting for the subscription to be confirmed
done
say "5. Starting the bridge (its log: $dir/bridge.log)"
# /healthz, /readyz and /metrics on a free loopback port (8080 may be taken).
http_port="$(free_port)"
K2R_HTTP_LISTEN="127.0.0.1:$http_port" K2R_LOG_FORMAT=text \
    "$bin" run -c config/bridge.example.yaml 2>"$dir/bridge.log" &
bridge_pid=$!

say "6. Producing $events events to Kafka; notifications as they arrive on Redis:"
users=(octocat mona hubot)
repos=(octo-org/hello-world microsoft/vscode torvalds/linux)
kinds=(PushEvent IssuesEvent WatchEvent ForkEvent)
(
    for i in $(seq 1 "$((events - 1))"); do
        if [ $((i % 2)) -eq 0 ]; then
            st=user; sid="${users[$((i % 3))]}"
        else
            st=repo; sid="${repos[$((i % 3))]}"
        fi
        printf '%s\t{"id":"evt-%04d","type":"%s","source_type":"%s","source_id":"%s","payload":{"size":%d}}\n' \
            "$sid" "$i" "${kinds[$((i % 4))]}" "$st" "$sid" "$i"
        sleep 0.3 # pacing for people watching, not synchronisation
    done
) | kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t github.events -K '\t' &
producer_pid=$!

# Show notifications live. Not on a terminal, redis-cli prints one line per
# reply element: 3 for the subscription, then 4 per message (pmessage,
# pattern, channel, message).
shown=0
deadline=$((SECONDS + 60 + events))
while [ "$shown" -lt "$events" ] && [ "$SECONDS" -lt "$deadline" ]; do
    mapfile -t lines <"$dir/sub.out"
    total=$(( (${#lines[@]} - 3) / 4 ))
    while [ "$shown" -lt "$total" ]; do
        base=$(( 3 + shown * 4 ))
        printf '  %-34s %s\n' "${lines[$((base + 2))]}" "${lines[$((base + 3))]}"
        shown=$((shown + 1))
    done
    kill -0 "$bridge_pid" 2>/dev/null || { echo "the bridge exited; its log:"; cat "$dir/bridge.log"; exit 1; }
    sleep 0.2 # polling a file for display
done
wait "$producer_pid" || true

# The counters are copied for /metrics four times a second: wait for the last ones.
for _ in $(seq 1 50); do
    [ "$(metric "$http_port" k2r_records_consumed_total)" -ge "$events" ] && break
    sleep 0.1 # polling /metrics for display; the loop ends on the count
done
say "7. What the bridge says about itself on http://127.0.0.1:$http_port/metrics (excerpt):"
metrics_text "$http_port" |
    grep -E '^k2r_(records_consumed_total|notifications_published_total|record_age_seconds_count|ready) ' |
    sed 's/^/  /' || true

say "8. Stopping the bridge (SIGTERM: finish the batch, commit, leave the group)"
kill -TERM "$bridge_pid"
wait "$bridge_pid" && rc=0 || rc=$?
bridge_pid=""
grep -E 'stats:|committed|stopped' "$dir/bridge.log" | sed 's/^/  /' || true
if [ "$shown" -ge "$events" ] && [ "$rc" -eq 0 ]; then
    say "Done: $events events produced to Kafka, $shown notifications received from Redis."
else
    say "Demo incomplete: $shown of $events notifications, bridge exit $rc. Bridge log:"
    cat "$dir/bridge.log"
    exit 1
fi

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo-browser.sh - the last mile, live in a browser: starts a local Kafka
# broker and redis-server (scripts/with-stack.sh), the bridge with
# config/bridge.history.yaml (its rule keeps a history beside each channel),
# the reference SSE gateway (examples/sse-gateway), and a producer of sample
# events, about two a second; prints the page's URL and keeps everything running
# until Ctrl-C. Reload the page, or stop the gateway and start it again: the
# list goes on without gap or duplicate (docs/history.md). Everything started
# here is stopped on every exit path.
#
# usage: scripts/demo-browser.sh BIN   (make demo-browser)
#   GATEWAY_LISTEN=HOST:PORT   where the gateway listens (default 127.0.0.1 and a free port)
#   DEMO_RATE=N                events per second (default 2)
# shellcheck disable=SC2317  # the trap handlers are reached through trap
set -euo pipefail
. "$(dirname "$0")/loopback.sh"
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-build/kafka-redis-bridge}")"

if [ -z "${K2R_TEST_STACK_DIR:-}" ]; then
    exec scripts/with-stack.sh "$0" "$bin"
fi

# Inside the stack from here on.
dir="$K2R_TEST_STACK_DIR"
gw=examples/sse-gateway
rate="${DEMO_RATE:-2}"
bridge_pid="" gateway_pid="" producer_pid=""
stop_pid() { # PID SIGNAL: signal it and wait for it, if it runs
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill "-$2" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    trap '' INT TERM
    stop_pid "$producer_pid" TERM
    stop_pid "$gateway_pid" TERM
    stop_pid "$bridge_pid" TERM
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "1. Kafka is at $K2R_TEST_KAFKA_BROKERS, Redis at 127.0.0.1:$K2R_TEST_REDIS_PORT"
export K2R_KAFKA_BROKERS="$K2R_TEST_KAFKA_BROKERS"
export K2R_REDIS_URL="redis://127.0.0.1:$K2R_TEST_REDIS_PORT"
say "2. Checking config/bridge.history.yaml"
"$bin" check -c config/bridge.history.yaml

say "3. Creating the topic github.events with its first event"
printf 'octocat\t{"id":"evt-0000","type":"CreateEvent","source_type":"user","source_id":"octocat"}\n' |
    kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t github.events -K '\t'

say "4. Starting the bridge (its log: $dir/bridge.log)"
http_port="$(free_port)"
K2R_HTTP_LISTEN="127.0.0.1:$http_port" K2R_LOG_FORMAT=text \
    "$bin" run -c config/bridge.history.yaml 2>"$dir/bridge.log" &
bridge_pid=$!

say "5. Starting the SSE gateway (its log: $dir/gateway.log)"
if [ ! -f "$gw/node_modules/.package-lock.json" ] || [ "$gw/package-lock.json" -nt "$gw/node_modules/.package-lock.json" ]; then
    (cd "$gw" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
listen="${GATEWAY_LISTEN:-127.0.0.1:$(free_port)}"
node "$gw/server.js" --listen "$listen" --redis "$K2R_REDIS_URL" >"$dir/gateway.out" 2>"$dir/gateway.log" &
gateway_pid=$!
deadline=$((SECONDS + 30))
until grep -q '^listening on ' "$dir/gateway.out"; do
    if ! kill -0 "$gateway_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        echo "the gateway did not start; its log:"
        cat "$dir/gateway.log"
        exit 1
    fi
    sleep 0.1 # polling the gateway's first line
done
url="$(sed -n 's/^listening on //p' "$dir/gateway.out")"

say "6. Producing $rate events a second to Kafka (users octocat, mona, hubot; repos)"
# One kcat per event: kcat -P reads its input in blocks, so a long-running
# one would hold events back and send them in bursts.
users=(octocat mona hubot)
repos=(octo-org/hello-world microsoft/vscode torvalds/linux)
kinds=(PushEvent IssuesEvent WatchEvent ForkEvent PullRequestEvent)
pause="$(awk -v r="$rate" 'BEGIN { print 1 / r }')"
(
    i=0 u=0
    while :; do
        i=$((i + 1))
        if [ $((i % 3)) -ne 0 ]; then # two events in three are a user's
            u=$((u + 1))
            st=user sid="${users[$((u % 3))]}" kind="${kinds[$(((u / 3 + u) % 5))]}"
        else
            st=repo sid="${repos[$((i / 3 % 3))]}" kind="${kinds[$((i % 5))]}"
        fi
        printf '%s\t{"id":"evt-%04d","type":"%s","source_type":"%s","source_id":"%s"}\n' \
            "$sid" "$i" "$kind" "$st" "$sid" |
            kcat -P -b "$K2R_TEST_KAFKA_BROKERS" -t github.events -K '\t' || exit 1
        sleep "$pause" # pacing for people watching
    done
) &
producer_pid=$!

page="$url/?channel=events:user:octocat"
say "7. Open $page"
echo "   (any channel: ?channel=events:user:mona, ?channel=events:repo:torvalds/linux)"
echo "   Reload the page, or close it and come back: it resumes where it was. Ctrl-C stops everything."
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then
    xdg-open "$page" >/dev/null 2>&1 || true
fi

# Until Ctrl-C, or until something stops by itself.
while kill -0 "$bridge_pid" 2>/dev/null && kill -0 "$gateway_pid" 2>/dev/null; do
    sleep 1 & wait $! # waiting for Ctrl-C; `wait` returns at once on a signal
done
kill -0 "$bridge_pid" 2>/dev/null || { echo "the bridge exited; its log:"; tail -n 40 "$dir/bridge.log"; exit 1; }
echo "the gateway exited; its log:"
tail -n 40 "$dir/gateway.log"
exit 1

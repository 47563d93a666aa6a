#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compare.sh - the bridge side by side with its peers and the two ceilings
# (issue 14), on one stack, same broker, Redis, mapping and backlog.
#
# Runs inside scripts/with-stack.sh. Builds the contenders that are not the
# bridge: the Go peer (bench/peers/go: franz-go + go-redis) and the measuring
# tool (bench/tools, k2rbench) with `go build` (modules pinned by go.mod and
# go.sum, fetched from the Go module proxy once), and the Python peer's
# virtualenv (bench/peers/python/requirements.txt, pinned, from PyPI once,
# kept in the cache). Then:
#
#  1. Same bytes: the bridge and both peers each drain one sample topic (300
#     small events and every usable webhook, one partition) with a pattern
#     subscriber listening; their "channel<TAB>notification" lists must be
#     identical, byte for byte, or the bench stops there.
#  2. Two backlogs, each on a 3-partition topic: SMALL seed-shaped events of
#     about 110 bytes, and the real GitHub webhook corpus
#     (scripts/fetch-webhooks.sh), each payload wrapped in a seed-shaped event
#     as its "payload", repeated to WEBHOOKS records (about 10 KB each). Each
#     round drains each backlog with the bridge, the Go peer, the Python peer
#     (fewer rounds) and kcat -C -e (the Kafka consume-only ceiling), each as
#     a fresh consumer group, interleaved, and measures redis-benchmark's
#     PUBLISH rate on one connection at the bridge's pipeline depth (the Redis
#     ceiling). records/s run from the contender's log line saying it was
#     assigned its partitions (the bridge's "kafka: assigned", the peers'
#     "assigned") to Redis's Nth PUBLISH (INFO commandstats after CONFIG
#     RESETSTAT, polled every 2 ms): joining the group is not counted, reading
#     the first fetch is. For kcat (large fetches and prefetch queue, 10 ms
#     fetch wait: it is a ceiling), from its first output to its last, the
#     lines of the first (stdio buffers them) not counted. CPU is the child's
#     utime+stime over its whole life, over N; peak RSS its VmHWM, sampled
#     every 5 ms (not ru_maxrss, which starts at the parent's own peak).
#  3. Latency at a steady LAT_RATE records/s: k2rbench latency produces events
#     carrying their produce time, a PSUBSCRIBE events:* subscriber takes
#     their arrival, for the bridge and then the Go peer; p50, p99, max and the
#     contender's CPU per record over a LAT_SECS window.
#     Each round also drains the small backlog with the bridge's notification
#     script on: dedupe (a mark per record, then PUBLISH, in one EVALSHA)
#     and a rule's history (XADD, PEXPIRE and PUBLISH in one EVALSHA).
#  3b. The producer shim's latency: bench/shim-latency (one librdkafka
#     producer, one hiredis subscriber) with the shim loaded into the
#     producer and no bridge, then with the bridge alone: produce call ->
#     Kafka's acknowledgement -> arrival, p50 and p99.
#  4. k2rbench report prints one Markdown table (medians, ranges, ratios) and
#     issue 14's targets, and exits 1 when the bridge's median on small
#     events is below the Go peer's: the regression guard.
#
# usage: K2R_KAFKA_JVM=kafka scripts/with-stack.sh bench/compare.sh BUILD_DIR
#        (make bench: the broker with the JVM options of Kafka's operations
#        guide, scripts/stack.sh)
# env:   BENCH_ROUNDS (5) rounds of the bridge, the Go peer and kcat;
#        BENCH_PY_ROUNDS (3) of the Python peer; BENCH_SMALL (200000) and
#        BENCH_WEBHOOKS (20000) records; BENCH_LAT_RATE (5000) records/s and
#        BENCH_LAT_SECS (10) s of latency window (BENCH_LAT_SECS=0: none),
#        BENCH_LAT_ROUNDS (2) times for each of the bridge and the Go peer;
#        BENCH_RESULTS (a file to keep the raw lines in); BENCH_WARMUP (6)
#        untimed drains of each backlog before the rounds;
#        K2R_CACHE_DIR (the Python virtualenv's cache, as for the stack)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:-build}" && pwd)"
bin="$build/kafka-redis-bridge"
rounds="${BENCH_ROUNDS:-5}" py_rounds="${BENCH_PY_ROUNDS:-3}"
small="${BENCH_SMALL:-200000}" webhooks="${BENCH_WEBHOOKS:-20000}"
lat_rate="${BENCH_LAT_RATE:-5000}" lat_secs="${BENCH_LAT_SECS:-10}" lat_rounds="${BENCH_LAT_ROUNDS:-2}"
depth=512 # the bridge's redis.pipeline_depth default, which it runs with here
: "${K2R_TEST_KAFKA_BROKERS:?run me under scripts/with-stack.sh}"
brokers="$K2R_TEST_KAFKA_BROKERS"
redis_addr="127.0.0.1:$K2R_TEST_REDIS_PORT"
cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
say() { echo "compare: $(date +%T) $*" >&2; }
# failed WHAT LOG: says WHAT failed, shows the end of its LOG, stops the bench.
failed() {
    say "$1 failed; its log:"
    tail -n 20 "$2" >&2
    exit 1
}

# ---- the contenders that are not the bridge ----
command -v go >/dev/null || {
    say "go is not on PATH (the Go peer and k2rbench are built with it)"
    exit 1
}
mkdir -p "$build/bench"
say "building the Go peer and k2rbench"
(cd "$here/peers/go" && go build -trimpath -o "$build/bench/go-peer" .)
(cd "$here/tools" && go build -trimpath -o "$build/bench/k2rbench" .)
gopeer="$build/bench/go-peer" k2rbench="$build/bench/k2rbench"
req="$here/peers/python/requirements.txt"
venv="$cache/bench-python/$(cksum <"$req" | cut -d' ' -f1)"
if [ ! -f "$venv/complete" ]; then
    say "installing the Python peer's requirements into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$venv/complete"
fi
pypeer=("$venv/bin/python" "$here/peers/python/peer.py")

# ---- the records ----
awk -v n="$small" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"id\":\"e%d\",\"type\":\"push\",\"source_type\":\"user\",\"source_id\":\"u%d\",\"payload\":{\"ref\":\"refs/heads/main\",\"size\":%d}}\n", i, i % 1000, i % 7
}' >"$work/small"
index="$("$here/../scripts/fetch-webhooks.sh")"
"$k2rbench" webhooks -in "$index" -n "$webhooks" >"$work/webhooks"
"$k2rbench" webhooks -in "$index" -n 400 | awk '!seen[substr($0, index($0, ",\"source_type\""))]++' >"$work/sample-wh"
{ head -n 300 "$work/small"; cat "$work/sample-wh"; } >"$work/sample"
say "producing $small small events, $webhooks webhooks ($(($(wc -c <"$work/webhooks") / webhooks)) B on average) and $(wc -l <"$work/sample") sample records"
"$k2rbench" produce -brokers "$brokers" -topic "bench-small-$$" -partitions 3 -file "$work/small"
"$k2rbench" produce -brokers "$brokers" -topic "bench-webhooks-$$" -partitions 3 -file "$work/webhooks"
"$k2rbench" produce -brokers "$brokers" -topic "bench-sample-$$" -partitions 1 -file "$work/sample"

# bridge_config TOPIC GROUP [SECTION [RULE_EXTRA]]: the bench's bridge
# config, on stdout; SECTION is added at the top level (dedupe: ...),
# RULE_EXTRA inside the rule (history: ...).
bridge_config() {
    cat <<YAML
kafka:
  brokers: $brokers
  group_id: $2
  topics: [$1]
  properties: {auto.offset.reset: earliest}
redis:
  url: redis://$redis_addr
  pipeline_depth: $depth
http: {enabled: false}
log: {format: text}
${3:-}
rules:
  - {name: bench, topic: $1, type: source_type, id: source_id${4:+, $4}}
YAML
}

# contender WHO TOPIC GROUP N: sets cmd (the command line) and how (drain's
# flags) for one run.
contender() {
    local who="$1" topic="$2" group="$3" n="$4"
    case "$who" in
    bridge)
        bridge_config "$topic" "$group" >"$work/$group.yaml"
        cmd=("$bin" run -c "$work/$group.yaml") how=(-redis "$redis_addr" -term -mark "kafka: assigned") ;;
    bridge-dedupe) # every notification through the dedupe script (a bitmap mark, then PUBLISH)
        bridge_config "$topic" "$group" "dedupe: {enabled: true, prefix: \"bench:$group:\"}" >"$work/$group.yaml"
        cmd=("$bin" run -c "$work/$group.yaml") how=(-redis "$redis_addr" -term -mark "kafka: assigned") ;;
    bridge-history) # every notification appended to its channel's stream too (XADD, PEXPIRE, PUBLISH)
        bridge_config "$topic" "$group" "" "history: {maxlen: 100, ttl: 10m}" >"$work/$group.yaml"
        cmd=("$bin" run -c "$work/$group.yaml") how=(-redis "$redis_addr" -term -mark "kafka: assigned") ;;
    go)
        cmd=("$gopeer" -brokers "$brokers" -topic "$topic" -group "$group" -redis "$redis_addr" -n "$n")
        how=(-redis "$redis_addr" -mark assigned) ;;
    python)
        cmd=("${pypeer[@]}" --brokers "$brokers" --topic "$topic" --group "$group" --redis "$redis_addr" -n "$n")
        how=(-redis "$redis_addr" -mark assigned) ;;
    kafka)
        # A ceiling: large fetches, a prefetch queue that never fills
        # (Debian's kcat links librdkafka 2.0.2, whose fetcher sits out a
        # whole second once queued.max.messages.kbytes is reached), and the
        # end of the partitions seen 10 ms after the last record, not 500
        # (kcat's output is buffered: its last lines come out at its exit).
        cmd=(kcat -C -b "$brokers" -t "$topic" -o beginning -e -q -f '%o\n'
            -X max.partition.fetch.bytes=8388608 -X queued.min.messages=1000000
            -X queued.max.messages.kbytes=1048576 -X fetch.wait.max.ms=10) how=(-stdout) ;;
    esac
}

# ---- 1. the same bytes ----
nsample="$(wc -l <"$work/sample")"
for who in bridge go python; do
    contender "$who" "bench-sample-$$" "sample-$who-$$" "$nsample"
    "$k2rbench" drain -n "$nsample" "${how[@]}" -capture "$work/capture-$who" \
        -log "$work/sample-$who.log" -timeout 120s -- "${cmd[@]}" >/dev/null ||
        failed "$who on the sample" "$work/sample-$who.log"
done
for who in go python; do
    if ! cmp -s "$work/capture-bridge" "$work/capture-$who"; then
        say "the $who peer's notifications differ from the bridge's (first differences, < bridge, > $who):"
        diff "$work/capture-bridge" "$work/capture-$who" | head -n 10 >&2
        exit 1
    fi
done
say "same bytes: the bridge and both peers published the same $nsample channel+notification pairs, in the same order"

# ---- 2. the backlogs, interleaved ----
results="${BENCH_RESULTS:-$work/results}"
: >"$results"
# broker_jit_ms: the CPU time the broker's JIT compiler threads (HotSpot's
# "C1 CompilerThread"s and "C2 CompilerThread"s) have used so far, in ms.
kafka_pid="$(tr -dc '0-9' <"$K2R_TEST_STACK_DIR/kafka.pid")"
broker_jit_ms() {
    local task ticks=0 f
    for task in /proc/"$kafka_pid"/task/*; do
        case "$(cat "$task/comm" 2>/dev/null)" in "C1 Compiler"* | "C2 Compiler"*) ;; *) continue ;; esac
        read -r -a f < <(sed -e 's/^.*) //' "$task/stat" 2>/dev/null) || continue
        ticks=$((ticks + f[11] + f[12])) # utime, stime
    done
    echo $((ticks * 1000 / $(getconf CLK_TCK)))
}
# drain WORKLOAD WHO GROUP N LOG WHAT: WHO drains the WORKLOAD backlog as
# consumer group GROUP (its output in LOG); prints k2rbench's line, or says
# WHAT failed and stops the bench.
drain() {
    contender "$2" "bench-$1-$$" "$3" "$4"
    "$k2rbench" drain -n "$4" "${how[@]}" -log "$5" -- "${cmd[@]}" || failed "$6" "$5"
}
# one WORKLOAD WHO ROUND N: one timed drain, appended to the results with the
# broker's JIT compiling time meanwhile (broker_jit_ms: CPU the broker's
# compiler threads took from the two cores the contender was timed on).
one() {
    local w="$1" who="$2" r="$3" n="$4" line jit
    jit="$(broker_jit_ms)"
    line="$(drain "$w" "$who" "bench-$w-$who-$r-$$" "$n" "$work/$w-$who-$r.log" "$who on $w (round $r)")" ||
        exit 1
    line="$line broker_jit_ms=$(($(broker_jit_ms) - jit))"
    echo "$w $who $r $line" >>"$results"
    say "$w round $r: $who: $line"
}
# records WORKLOAD: how many records its backlog holds.
records() { if [ "$1" = small ]; then echo "$small"; else echo "$webhooks"; fi; }
note="$(printf '{"id":"e%d","type":"push","source_id":"u%d"}' 199999 999)"
# Warm-up drains, not recorded: the broker compiles (JIT) each fetch path
# when it first meets it, and that fell on the first rounds. With none, round
# 1 drained the webhooks at 70 % of the median; with one, the bridge's
# webhook rate still rose round by round, 82k, 118k, 137k, 168k/s; twelve
# drains of the webhooks on a fresh broker: 78k-144k/s, then 147k-183k/s from
# the sixth on, and the bridge's CPU per record fell from 10.5 to 7.4-9.1 us
# (a bridge waiting on a slow broker wakes up more often per record). Each
# other client fetches its own way (franz-go; kcat's librdkafka 2.0.2 with
# 8 MiB answers; the Python client's own librdkafka): the broker's compiler
# threads took 200 ms of CPU during kcat's first webhook drain and 140 ms
# during one of the Python peer's. So: one drain of each backlog by each other
# contender, then BENCH_WARMUP pairs of bridge drains (small, webhooks).
# Waiting for the broker to stop compiling does not work: after 30 pairs its
# compiler threads still took 50 ms during the last pair, and which rounds
# ran slow did not follow their broker_jit_ms (a webhook round at 130k/s
# against 172k/s with 10 ms; one at 172k/s with 120 ms). Those rounds spent
# more CPU on the same records (10.5 us against 7.1 a webhook): the machine.
# warm WORKLOAD WHO I: one untimed drain.
warm() {
    drain "$1" "$2" "bench-$1-warmup-$2-$3-$$" "$(records "$1")" "$work/$1-warmup.log" \
        "the warm-up drain of $1 by $2" >/dev/null
}
warmup="${BENCH_WARMUP:-6}"
if [ "$warmup" -gt 0 ]; then
    for w in small webhooks; do for who in go python kafka; do warm "$w" "$who" 0; done; done
    for who in bridge-dedupe bridge-history; do warm small "$who" 0; done
    for ((i = 0; i < warmup; i++)); do for w in small webhooks; do warm "$w" bridge "$i"; done; done
fi
for ((r = 1; r <= rounds; r++)); do
    for w in small webhooks; do
        n="$(records "$w")"
        one "$w" bridge "$r" "$n"
        one "$w" go "$r" "$n"
        [ "$r" -gt "$py_rounds" ] || one "$w" python "$r" "$n"
        one "$w" kafka "$r" "$n"
    done
    # What the notification script costs (dedupe; a rule's history), on
    # the small backlog, beside the plain bridge of the same round.
    one small bridge-dedupe "$r" "$small"
    one small bridge-history "$r" "$small"

    rps="$(redis-benchmark -h 127.0.0.1 -p "$K2R_TEST_REDIS_PORT" -c 1 -P "$depth" -n 1000000 -q \
        PUBLISH events:user:u999 "$note" | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -n 1 | cut -d' ' -f1)"
    echo "small redis $r rate=$rps" >>"$results"
    say "round $r: redis-benchmark -c 1 -P $depth PUBLISH (${#note} B): $rps/s"
done

# ---- 3. latency at a steady rate ----
# A warm-up window first, not recorded: the broker's first seconds of one
# small produce request per record (a path the backlogs above never took)
# fell on the first contender, whose acknowledgement p99 was 3.3-5.3 ms in
# four runs against 1.9-3.1 ms for the window right after it.
if [ "$lat_secs" -gt 0 ]; then
    contender bridge "bench-lat-warmup-$$" "bench-lat-warmup-$$" 0
    "$k2rbench" latency -brokers "$brokers" -topic "bench-lat-warmup-$$" -redis "$redis_addr" \
        -rate "$lat_rate" -secs 3 -log "$work/lat-warmup.log" -- "${cmd[@]}" >/dev/null ||
        failed "the latency warm-up" "$work/lat-warmup.log"
fi
for ((r = 1; r <= lat_rounds && lat_secs > 0; r++)); do
    for who in bridge go; do
        contender "$who" "bench-lat-$who-$r-$$" "bench-lat-$who-$r-$$" 0
        line="$("$k2rbench" latency -brokers "$brokers" -topic "bench-lat-$who-$r-$$" -redis "$redis_addr" \
            -rate "$lat_rate" -secs "$lat_secs" -log "$work/lat-$who-$r.log" -- "${cmd[@]}")" ||
            failed "latency with $who" "$work/lat-$who-$r.log"
        echo "latency $who $r $line" >>"$results"
        say "latency at $lat_rate/s, round $r: $who: $line"
    done
done

# ---- 3b. the producer shim: produce -> acknowledgement -> subscriber ----
# One producer (bench/shim-latency.c: librdkafka, linger.ms 1) and one
# hiredis subscriber for both: the shim loaded into the producer as a plugin
# (no bridge), then the bridge alone following the topic; the same rate.
shimlat="$build/bench/shim-latency"
for ((r = 1; r <= lat_rounds && lat_secs > 0; r++)); do
    for who in shim bridge; do
        topic="bench-shimlat-$who-$r-$$"
        "$k2rbench" produce -brokers "$brokers" -topic "$topic" -partitions 3 -file <(head -n 1 "$work/small")
        bridge_config "$topic" "shimlat-$who-$r-$$" >"$work/shimlat-$who-$r.yaml"
        if [ "$who" = shim ]; then
            args=(-P "$build/libk2r_shim.so" -c "$work/shimlat-$who-$r.yaml")
        else
            args=(-- "$bin" run -c "$work/shimlat-$who-$r.yaml")
        fi
        line="$("$shimlat" -b "$brokers" -t "$topic" -p "$K2R_TEST_REDIS_PORT" -r "$lat_rate" \
            -s "$lat_secs" "${args[@]}" 2>"$work/shimlat-$who-$r.log")" ||
            failed "shim latency with $who" "$work/shimlat-$who-$r.log"
        echo "shimlat $who $r $line" >>"$results"
        say "produce -> subscriber at $lat_rate/s, round $r: $who: $line"
    done
done

# ---- 4. the table and the guard ----
echo
echo "Side by side (bench/compare.sh; $rounds rounds, Python $py_rounds, latency $lat_rounds; one stack, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
echo
"$k2rbench" report "$results"

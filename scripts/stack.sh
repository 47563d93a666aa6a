#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# stack.sh - starts and stops the real services the integration tests, the
# benchmarks and the demo run against: one single-node KRaft Apache Kafka
# broker (combined broker+controller, jars from scripts/kafka-libs.sh, run
# with this machine's Java 17; besides its plaintext listener, always four
# secured ones: SASL_SSL with SCRAM-SHA-512, SASL_SSL with OAUTHBEARER
# validated by Kafka's unsecured-JWT validator, SASL_SSL with SCRAM whose
# certificate names only wrong.example, and SSL requiring a client
# certificate; always on: about 0.7 s more broker CPU at start, most of it
# for the first TLS listener, see README "Dependencies"), one redis-server, a second redis-server that
# speaks TLS (redis-tls: a TLS port and a plaintext port, so that tests
# subscribe without TLS while the bridge publishes over it), a Sentinel
# topology (a primary, its replica and three sentinels monitoring them as
# "k2rmaster") and a Redis Cluster (three primaries with one replica each),
# all on 127.0.0.1 on free ports picked at start, with all their state, logs
# and PID files in DIR. The TLS server's CA and certificates are made at start
# with openssl in DIR/tls (EC P-256 keys: a few milliseconds each); none is in
# the repository. Every Redis-family server is either Redis (redis-server,
# redis-cli: Debian's 7.0) or Valkey (valkey-server, valkey-cli: Valkey 8 from
# bookworm-backports, see scripts/deps.sh valkey), as K2R_TEST_REDIS_FLAVOR
# says; sentinels run as `FLAVOR-server FILE --sentinel`, so no *-sentinel
# package is needed. The script talks to the servers with the flavour's own
# cli (written to DIR/env); redis-cli, always installed, works against Valkey
# too, so tests may keep using it.
#
# usage: scripts/stack.sh start DIR
#          Installs what is missing (scripts/deps.sh test, and valkey for that
#          flavour), fetches the broker jars once (scripts/kafka-libs.sh),
#          starts all servers in parallel, creates the cluster (FLAVOR-cli
#          --cluster create ... --cluster-replicas 1, in the background while
#          the broker starts), waits until everything answers and writes
#            DIR/env        K2R_TEST_KAFKA_BROKERS=127.0.0.1:PORT
#                           K2R_TEST_KAFKA_SASL_SSL_BOOTSTRAP=127.0.0.1:PORT
#                             (SASL_SSL, SCRAM-SHA-512; certificate for
#                             127.0.0.1 and localhost signed by ca.crt)
#                           K2R_TEST_KAFKA_OAUTH_BOOTSTRAP=127.0.0.1:PORT
#                             (SASL_SSL, OAUTHBEARER: any unsigned JWT with a
#                             sub claim, e.g. librdkafka's
#                             enable.sasl.oauthbearer.unsecure.jwt; the same
#                             certificate)
#                           K2R_TEST_KAFKA_WRONGNAME_BOOTSTRAP=127.0.0.1:PORT
#                             (SASL_SSL, SCRAM-SHA-512; a certificate signed
#                             by ca.crt for wrong.example only)
#                           K2R_TEST_KAFKA_MTLS_BOOTSTRAP=127.0.0.1:PORT
#                             (SSL; a client certificate signed by ca.crt
#                             required, e.g. client.crt and .key)
#                           K2R_TEST_KAFKA_SCRAM_USER=k2r-bridge
#                           K2R_TEST_KAFKA_SCRAM_PASSWORD=... (new each start)
#                           K2R_TEST_KAFKA_CA_FILE=DIR/tls/ca.crt
#                           K2R_TEST_REDIS_HOST=127.0.0.1
#                           K2R_TEST_REDIS_PORT=PORT
#                           K2R_TEST_REDIS_TLS_PORT=PORT (TLS, client
#                             certificates optional)
#                           K2R_TEST_REDIS_TLS_PLAIN_PORT=PORT (the same
#                             server without TLS)
#                           K2R_TEST_TLS_DIR=DIR/tls: ca.crt, server.crt and
#                             .key (127.0.0.1, localhost), client.crt and .key,
#                             other-ca.crt (a CA that signed neither),
#                             expired.crt (the server's key, already expired),
#                             wrongname.crt and .key (wrong.example), and the
#                             broker's PEM keystores kafka-server.pem and
#                             kafka-wrongname.pem (key, then certificate)
#                           K2R_TEST_REDIS_FLAVOR=redis|valkey
#                           K2R_TEST_REDIS_VERSION=x.y.z (of FLAVOR-server)
#                           K2R_TEST_REDIS_CLI=redis-cli|valkey-cli
#                           K2R_TEST_SENTINEL_MASTER=k2rmaster (the monitored
#                             name)
#                           K2R_TEST_SENTINEL_ADDRS=127.0.0.1:P1,...:P2,...:P3
#                             (the three sentinels)
#                           K2R_TEST_SENTINEL_DATA_PORTS=PRIMARY,REPLICA (the
#                             two data nodes in start order: the first starts
#                             as the primary; after a failover the roles swap,
#                             so ask a sentinel which is which)
#                           K2R_TEST_SENTINEL_DOWN_AFTER_MS=1000 (failover-
#                             timeout 5000 ms; a stopped primary is failed
#                             over in about 2 s, SENTINEL FAILOVER in about
#                             1 s. The old primary, or one that start-node
#                             brings back, is made a replica by the sentinels
#                             only 8 to 11 s later: wait for its ROLE before
#                             failing over again)
#                           K2R_TEST_CLUSTER_ADDRS=127.0.0.1:A,...:B,...:C (the
#                             primaries, in slot order: A serves slot 0)
#                           K2R_TEST_CLUSTER_REPLICA_ADDRS=...:A',...:B',...:C'
#                             (the replica of A, of B, of C; empty when none)
#                           K2R_TEST_CLUSTER_NODE_TIMEOUT_MS=2000 (a stopped
#                             primary's replica takes over in about 4 s)
#                           K2R_TEST_STACK_DIR=DIR
#            DIR/NAME.pid, .log, .port and .cmd for each server NAME (kafka,
#            redis, redis-tls, sentinel-data1, sentinel-data2, sentinel1..3,
#            cluster1..6), and the config files (sentinel*.conf, which the
#            sentinels rewrite; cluster*-nodes.conf).
#          When `start` returns, all three sentinels report the primary, know
#          the replica (master-link-status ok) and each other, so `SENTINEL
#          FAILOVER k2rmaster` works at once; every cluster node says
#          cluster_state:ok, all agree on the nodes, roles and slots, and
#          every replica's link to its primary is up.
#          On a DIR where a stack was stopped, it starts afresh: the old data
#          (kafka-data, cluster*-nodes.conf, *.rdb, env) goes; logs are
#          appended to.
#          A summary goes to stderr; nothing goes to stdout. On a failure it
#          prints the end of the failing server's log, stops what it started
#          and exits 1.
#        scripts/stack.sh stop DIR
#          TERM to every server that has a PID file in DIR, up to 20 s for them
#          to end, then KILL. Safe to run twice, after a partial start, or on
#          a DIR with nothing in it.
#        scripts/stack.sh stop-node DIR PORT
#          The same for one server only, named by a port it listens on (any
#          server of the stack: the plain or TLS port of redis-tls, a sentinel,
#          a data or cluster node, the broker): its data dir, port, config
#          and command line stay in DIR (fault-injection tests restart servers
#          mid-stream).
#        scripts/stack.sh start-node DIR PORT
#          Starts that server again exactly as `start` did (same port, same
#          data dir and config file, so a sentinel's or a cluster node's
#          rewritten config and a data node's role as Sentinel last set it
#          survive; no new format), rewrites its PID file so that `stop` (and
#          with-stack.sh's watchdog) stop the new process, and waits until it
#          answers (PING; for the broker, metadata). Does nothing when it is
#          running already; exits 1 (after printing the end of its log and
#          stopping it) when it does not come up in time.
#        scripts/stack.sh stop-redis DIR | stop-redis-tls DIR | stop-kafka DIR
#        scripts/stack.sh start-redis DIR | start-redis-tls DIR | start-kafka DIR
#          stop-node/start-node for those servers by name.
# Most callers want scripts/with-stack.sh, which wraps a command in both.
#
# Environment:
#   K2R_TEST_TIMEOUT_MULTIPLIER=F  scales the start deadlines (Kafka 120 s,
#                                  Redis 20 s, Sentinel and Cluster 30 s) and
#                                  the stop grace (default 1)
#   K2R_TEST_REDIS_FLAVOR=redis|valkey
#                                  which servers and cli (default redis)
#   K2R_KAFKA_VERSION=V            passed on to kafka-libs.sh (default 4.1.x,
#                                  falling back to 3.9.x)
#   K2R_CACHE_DIR=DIR              the jar cache (see kafka-libs.sh)
#   K2R_KAFKA_CDS=0                no AppCDS class-data archive (by default
#                                  the first broker run writes one to the
#                                  cache at stop, and later runs use it)
#   K2R_KAFKA_JVM=test|kafka       the broker's JVM: small and quick to start
#                                  (default; the tests), or with the typical
#                                  arguments of Kafka's operations guide (6
#                                  GiB heap, G1, full JIT; the benchmarks)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "stack.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|start-redis|stop-redis|start-redis-tls|stop-redis-tls|start-kafka|stop-kafka DIR" >&2
    echo "       $0 start-node|stop-node DIR PORT" >&2
    exit 2
}

# Sets $flavor, $server and $cli from K2R_TEST_REDIS_FLAVOR.
pick_flavor() {
    flavor="${K2R_TEST_REDIS_FLAVOR:-redis}"
    case "$flavor" in
    redis | valkey) ;;
    *) die "K2R_TEST_REDIS_FLAVOR must be redis or valkey, not '$flavor'" ;;
    esac
    server="$flavor-server" cli="$flavor-cli"
}

# The cli that goes with server $2 of DIR $1: FLAVOR-cli for FLAVOR-server.
cli_of() {
    local bin
    bin="$(head -n 1 "$1/$2.cmd" 2>/dev/null)" || bin=""
    case "$bin" in
    *-server) echo "${bin%-server}-cli" ;;
    *) echo redis-cli ;;
    esac
}

# $cli against 127.0.0.1:PORT $1, the rest as its arguments; cut short after
# 5 s (a stopped or wedged server must not hang a polling loop).
rcli() {
    local port="$1"
    shift
    timeout 5 "$cli" -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

# scaled SECONDS -> whole seconds, at least 1
scaled() {
    awk -v s="$1" -v m="${K2R_TEST_TIMEOUT_MULTIPLIER:-1}" \
        'BEGIN { if (m !~ /^[0-9]*\.?[0-9]+$/) m = 1; v = int(s * m + 0.5); if (v < 1) v = 1; print v }'
}

# True when PID $1 is a live (non-zombie) process whose working directory is
# $2, i.e. the server this script started there and not a reused PID.
ours_alive() {
    local pid="$1" dir="$2" state cwd
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || state=""
        [ "$state" != Z ] || return 1
    fi
    if [ -e "/proc/$pid/cwd" ]; then
        cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || cwd=""
        # Unreadable cwd (gone already): treat as not ours.
        [ "$cwd" = "$dir" ] || return 1
    fi
    return 0
}

# True while PID $1 runs and is not a zombie; no fork (a polling loop's test).
running() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# Absolute, existing DIR (created when missing).
abs_dir() {
    mkdir -p -- "$1"
    (cd -- "$1" && pwd -P)
}

# TERM to the named servers of DIR (kafka, redis, sentinel1, ...), up to 20 s
# (scaled) for them to end, then KILL; their PID files go.
stop_servers() {
    local dir="$1" name pid pids=() names=() deadline i
    shift
    [ -d "$dir" ] || return 0
    dir="$(cd -- "$dir" && pwd -P)"
    for name in "$@"; do
        [ -f "$dir/$name.pid" ] || continue
        pid="$(tr -dc '0-9' <"$dir/$name.pid" 2>/dev/null || true)"
        if ours_alive "$pid" "$dir"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$name")
        else
            rm -f "$dir/$name.pid"
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    deadline=$((SECONDS + $(scaled 20)))
    while [ "$SECONDS" -lt "$deadline" ]; do
        local left=0
        for i in "${!pids[@]}"; do
            ours_alive "${pids[$i]}" "$dir" && left=1
        done
        [ "$left" -eq 1 ] || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        if ours_alive "${pids[$i]}" "$dir"; then
            echo "stack.sh: ${names[$i]} (pid ${pids[$i]}) ignored TERM; killing it" >&2
            kill -KILL "${pids[$i]}" 2>/dev/null || true
            # a class-data archive cut short by KILL is not kept
            [ "${names[$i]}" != kafka ] || rm -f "$dir/kafka.jsa.dest"
            # KILL cannot be ignored; give the kernel a moment to reap
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                ours_alive "${pids[$i]}" "$dir" || break
                sleep 0.1
            done
        fi
        rm -f "$dir/${names[$i]}.pid"
    done
}

# The names of the servers of DIR $1 that have a PID file, one per line.
pid_names() {
    local f
    for f in "$1"/*.pid; do
        [ -f "$f" ] || continue
        f="${f##*/}"
        echo "${f%.pid}"
    done
}

stop_stack() {
    local names
    [ -d "$1" ] || return 0
    mapfile -t names < <(pid_names "$1")
    [ "${#names[@]}" -eq 0 ] || stop_servers "$1" "${names[@]}"
    save_cds_archive "$(cd -- "$1" && pwd -P)"
}

# Moves a class-data archive that the broker dumped at its exit into the cache
# (see start_stack); a rename inside the cache, so readers never see half a file.
save_cds_archive() {
    local dir="$1" dest
    [ -f "$dir/kafka.jsa.dest" ] || return 0
    dest="$(cat "$dir/kafka.jsa.dest")"
    rm -f "$dir/kafka.jsa.dest"
    if [ -s "$dir/kafka.jsa" ] && [ -n "$dest" ] && [ ! -e "$dest" ]; then
        if cp "$dir/kafka.jsa" "$dest.tmp.$$" 2>/dev/null; then
            mv -f "$dest.tmp.$$" "$dest"
            echo "stack.sh: saved the broker's class-data archive to $dest (faster starts)" >&2
        else
            rm -f "$dest.tmp.$$"
        fi
    fi
    rm -f "$dir/kafka.jsa"
}

# Prints N free loopback TCP ports, distinct, one per line.
# Free loopback ports, picked below the kernel's ephemeral range: a port
# from that range can be handed to some outgoing connection between our
# check and the server's bind, and a client reconnecting to a stopped
# server's ephemeral port can even connect to itself.
free_ports() {
    python3 - "$1" <<'EOF'
import random, socket, sys
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    low = 32768
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    port = random.randrange(10000, max(low, 10001))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks.append(s)
    ports.append(port)
for s in socks:
    s.close()
print("\n".join(map(str, ports)))
EOF
}

# A Kafka cluster id (a Kafka Uuid: 16 random bytes, base64url without padding,
# never starting with '-'), made without starting a JVM (or Python).
cluster_id() {
    local s
    while :; do
        s="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
        case "$s" in
        -* | AAAAAAAAAAAAAAAAAAAAAA | AAAAAAAAAAAAAAAAAAAAAQ) ;;
        *)
            echo "$s"
            return
            ;;
        esac
    done
}

# Records how server $2 (redis, kafka, cluster1, ...) of DIR $1 listening on port $3 is
# started: the rest of the arguments, one per line in DIR/$2.cmd (no argument
# holds a newline: DIR has no whitespace), and the port in DIR/$2.port. Both
# `start` and `start-node` run it from there, so a restarted
# server is the same server: same port, same data dir, same options.
write_cmd() {
    local dir="$1" name="$2" port="$3"
    shift 3
    printf '%s\n' "$@" >"$dir/$name.cmd"
    echo "$port" >"$dir/$name.port"
}

# Starts server $2 of DIR $1 from DIR/$2.cmd in the background, with DIR as
# its working directory (ours_alive relies on it) and its output appended to
# DIR/$2.log, and writes its PID file.
launch() {
    local dir="$1" name="$2" args
    mapfile -t args <"$dir/$name.cmd"
    # The background subshell execs the server: $! is the server itself.
    (cd "$dir" && exec "${args[@]}" </dev/null >>"$dir/$name.log" 2>&1) &
    echo "$!" >"$dir/$name.pid"
}

# True when server $2 of DIR $1 answers on its port.
answers() {
    local port cli
    port="$(cat "$1/$2.port")"
    case "$2" in
    kafka) kcat -b "127.0.0.1:$port" -L -m 2 2>/dev/null | grep -q '1 brokers:' ;;
    *)
        cli="$(cli_of "$1" "$2")"
        [ "$(rcli "$port" ping)" = PONG ]
        ;;
    esac
}

# Polls until server $2 of DIR $1 answers; returns 1, the reason in $why, when
# it exits or SECONDS reaches the deadline $3 first.
wait_ready() {
    local dir="$1" name="$2" deadline="$3" pid label port
    pid="$(tr -dc '0-9' <"$dir/$name.pid")"
    port="$(cat "$dir/$name.port")"
    label="$(head -n 1 "$dir/$name.cmd") ($name)"
    [ "$name" != kafka ] || label="the Kafka broker"
    until answers "$dir" "$name"; do
        if ! ours_alive "$pid" "$dir"; then
            why="$label exited during start"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            why="$label did not answer on 127.0.0.1:$port in time"
            return 1
        fi
        sleep 0.1
    done
}

# start-node / start-redis / start-kafka: server $1 of the stack in DIR $2,
# again.
restart_server() {
    local name="$1" dir t0 secs=20 pid
    dir="$(cd -- "$2" 2>/dev/null && pwd -P)" || die "no stack in $2"
    [ -f "$dir/$name.cmd" ] || die "no $name was started in $dir (run: $0 start $dir first)"
    if [ -f "$dir/$name.pid" ] && ours_alive "$(tr -dc '0-9' <"$dir/$name.pid")" "$dir"; then
        return 0
    fi
    [ "$name" != kafka ] || secs=120
    t0=$SECONDS
    STACK_DIR="$dir" RESTARTING="$name"
    trap 'echo "stack.sh: interrupted; stopping $RESTARTING" >&2; stop_servers "$STACK_DIR" "$RESTARTING"; exit 130' INT TERM
    echo "== stack.sh start-$name $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$dir/$name.log"
    launch "$dir" "$name"
    if ! wait_ready "$dir" "$name" $((t0 + $(scaled "$secs"))); then
        echo "stack.sh: $why" >&2
        echo "----- last 40 lines of $dir/$name.log -----" >&2
        tail -n 40 "$dir/$name.log" >&2 || true
        echo "-----" >&2
        stop_servers "$dir" "$name"
        exit 1
    fi
    trap - INT TERM
    pid="$(cat "$dir/$name.pid")"
    echo "stack.sh: $name again at 127.0.0.1:$(cat "$dir/$name.port") (pid $pid); ready in $((SECONDS - t0)) s" >&2
}

# The TLS test material in DIR $1: a CA; a server certificate for 127.0.0.1
# and localhost; a client certificate; another CA that signed neither; and an
# expired copy of the server certificate (same key, its end before its start,
# which OpenSSL 3.0's `x509 -days -1` makes). EC P-256 keys keep it cheap.
make_certs() {
    local d="$1" ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    mkdir -p "$d"
    openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
        -subj "/CN=k2r test CA"
    openssl req -x509 "${ec[@]}" -keyout "$d/other-ca.key" -out "$d/other-ca.crt" -days 2 \
        -subj "/CN=k2r other CA"
    openssl req "${ec[@]}" -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/server.crt" -days 2 -extfile "$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/expired.crt" -days -1 -extfile "$d/server.ext"
    openssl req "${ec[@]}" -keyout "$d/client.key" -out "$d/client.csr" -subj "/CN=k2r client"
    openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/client.crt" -days 2
    openssl req "${ec[@]}" -keyout "$d/wrongname.key" -out "$d/wrongname.csr" \
        -subj "/CN=wrong.example"
    printf 'subjectAltName=DNS:wrong.example\n' >"$d/wrongname.ext"
    openssl x509 -req -in "$d/wrongname.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -out "$d/wrongname.crt" -days 2 -extfile "$d/wrongname.ext"
    # The broker's PEM keystores: the PKCS#8 key, then the certificate.
    cat "$d/server.key" "$d/server.crt" >"$d/kafka-server.pem"
    cat "$d/wrongname.key" "$d/wrongname.crt" >"$d/kafka-wrongname.pem"
    chmod 600 "$d"/*.key "$d"/kafka-*.pem
}

# The name of the server of DIR $1 that listens on port $2: the one whose
# DIR/NAME.port holds it, or (redis-tls) whose command line has --tls-port $2.
node_by_port() {
    local dir="$1" port="$2" f name
    case "$port" in '' | *[!0-9]*) die "not a port: '$port'" ;; esac
    for f in "$dir"/*.port; do
        [ -f "$f" ] || continue
        name="${f##*/}"
        name="${name%.port}"
        if [ "$(cat "$f")" = "$port" ]; then
            echo "$name"
            return 0
        fi
        if [ -f "$dir/$name.cmd" ] &&
            awk -v p="$port" 'prev == "--tls-port" && $0 == p { found = 1 } { prev = $0 } END { exit !found }' \
                "$dir/$name.cmd"; then
            echo "$name"
            return 0
        fi
    done
    die "no server of the stack in $dir listens on port $port"
}

# stop-node / start-node DIR PORT
node_cmd() {
    local what="$1" dir name
    dir="$(cd -- "$2" 2>/dev/null && pwd -P)" || die "no stack in $2"
    name="$(node_by_port "$dir" "$3")" || exit 1
    case "$what" in
    stop) stop_servers "$dir" "$name" ;;
    start) restart_server "$name" "$dir" ;;
    esac
}

# A sentinel's run id: 40 hex digits.
run_id() {
    od -An -N20 -tx1 /dev/urandom | tr -d ' \n'
}

# True when the flattened reply of SENTINEL sentinels|replicas on stdin (one
# value a line: the entries' key/value pairs one after the other) has $1
# entries, none flagged down or disconnected, and, with $2 = 1, every one
# with master-link-status ok.
sentinel_entries_ok() {
    awk -v want="$1" -v link="$2" '
        NR % 2 == 1 { k = $0; next }
        k == "name" { n++ }
        k == "flags" && $0 ~ /s_down|o_down|disconnected/ { bad = 1 }
        k == "master-link-status" { if ($0 == "ok") up++; else bad = 1 }
        END { exit !(n == want && !bad && (link != 1 || up == n)) }'
}

# True when all sentinels (ports $3...) of the stack report the primary
# 127.0.0.1:$2 for master $1, the replica (linked) and the two other sentinels.
sentinels_ready() {
    local name="$1" primary="$2" port
    shift 2
    for port in "$@"; do
        [ "$(rcli "$port" sentinel get-master-addr-by-name "$name" | tr '\n' ' ')" = "127.0.0.1 $primary " ] ||
            return 1
        rcli "$port" sentinel sentinels "$name" | sentinel_entries_ok 2 0 || return 1
        rcli "$port" sentinel replicas "$name" | sentinel_entries_ok 1 1 || return 1
    done
}

# The cluster as node $1 sees it, one node a line, sorted: id, address, role
# (with any fail/handshake/noaddr flag or link state other than connected),
# its primary's id or -, and its slots.
cluster_view() {
    rcli "$1" cluster nodes | awk '{
        f = $3; sub(/(^|,)myself/, "", f); sub(/^,/, "", f)
        role = f
        if ($8 != "connected") role = role "/" $8
        addr = $2; sub(/[@,].*/, "", addr)
        s = ""; for (i = 9; i <= NF; i++) s = s " " $i
        print $1, addr, role, $4 s
    }' | sort
}

# True when every cluster node (ports $2...) says cluster_state:ok, all see
# the same $1 nodes with the same roles and slots, all of them masters or
# slaves, and every replica's link to its primary is up. Then sets
# $cluster_primaries and $cluster_replicas: comma-separated 127.0.0.1:PORT,
# the primaries in slot order and the replica of each in the same order.
cluster_ready() {
    local want="$1" port view first="" info
    shift
    for port in "$@"; do
        info="$(rcli "$port" cluster info)" || return 1
        case "$info" in *cluster_state:ok*) ;; *) return 1 ;; esac
        view="$(cluster_view "$port")"
        [ -n "$view" ] || return 1
        if [ -z "$first" ]; then
            first="$view"
        elif [ "$view" != "$first" ]; then
            return 1
        fi
    done
    [ "$(printf '%s\n' "$first" | wc -l)" -eq "$want" ] || return 1
    printf '%s\n' "$first" | awk '$3 != "master" && $3 != "slave" { exit 1 }' || return 1
    for port in $(printf '%s\n' "$first" | awk '$3 == "slave" { sub(/.*:/, "", $2); print $2 }'); do
        rcli "$port" info replication | tr -d '\r' | grep -qx 'master_link_status:up' || return 1
    done
    cluster_primaries="$(printf '%s\n' "$first" | awk '$3 == "master" && NF > 4 {
        s = $5; sub(/-.*/, "", s); print s, $2 }' | sort -n | awk '{ print $2 }' | paste -sd, -)"
    cluster_replicas="$(printf '%s\n' "$first" | awk '
        $3 == "master" && NF > 4 { s = $5; sub(/-.*/, "", s); first[$1] = s }
        $3 == "slave" { of[$4] = of[$4] (of[$4] == "" ? "" : " ") $2 }
        END { for (id in first) if (id in of) print first[id], of[id] }' |
        sort -n | awk '{ for (i = 2; i <= NF; i++) print $i }' | paste -sd, -)"
}

start_stack() {
    local dir="$1" libs kport cport rport tport tplain cid jopts logopt t0 major jsa cds fmt_cds
    local ksasl koauth kwrong kmtls scram_user=k2r-bridge scram_password
    local name port i version ccpid fmtpid cstatus others d20 d30 d120 sdata=() sports=() sids=() cports=() cbus=() caddrs=()
    local sname=k2rmaster down_after=1000 failover_timeout=5000 node_timeout=2000
    case "$1" in *[[:space:]]*) die "DIR must not contain whitespace: '$1'" ;; esac
    pick_flavor
    dir="$(abs_dir "$1")"
    while read -r name; do
        if ours_alive "$(tr -dc '0-9' <"$dir/$name.pid")" "$dir"; then
            die "a stack is already running in $dir (stop it first: $0 stop $dir)"
        fi
    done < <(pid_names "$dir")
    # A stack stopped in DIR before starts afresh (new ports): its data goes,
    # its logs are appended to.
    rm -rf -- "$dir/kafka-data" "$dir"/cluster*-nodes.conf "$dir"/*.rdb "$dir/env"
    if [ "$flavor" = valkey ]; then
        "$here/deps.sh" test valkey >&2
    else
        "$here/deps.sh" test >&2
    fi
    { command -v "$server" && command -v "$cli"; } >/dev/null || die "$server or $cli is not on PATH"
    version="$("$server" --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')"
    libs="$("$here/kafka-libs.sh")"
    [ -d "$libs" ] || die "kafka-libs.sh gave no jar folder"
    t0=$SECONDS # the deadlines count from here, after any download
    d20=$((t0 + $(scaled 20))) d30=$((t0 + $(scaled 30))) d120=$((t0 + $(scaled 120)))

    STACK_DIR="$dir"
    trap 'echo "stack.sh: interrupted; stopping what was started" >&2; stop_stack "$STACK_DIR"; exit 130' INT TERM

    fail() {
        echo "stack.sh: $1" >&2
        if [ -n "${2:-}" ] && [ -f "$2" ]; then
            echo "----- last 40 lines of $2 -----" >&2
            tail -n 40 "$2" >&2 || true
            echo "-----" >&2
        fi
        stop_stack "$dir"
        exit 1
    }

    # Kafka 2 + 4 secured listeners, Redis 1, TLS 2, Sentinel 2 + 3, Cluster 6 + 6 bus ports
    mapfile -t ports < <(free_ports 26)
    [ "${#ports[@]}" -eq 26 ] || die "could not pick free ports (python3 missing?)"
    kport="${ports[0]}" cport="${ports[1]}" rport="${ports[2]}"
    tport="${ports[3]}" tplain="${ports[4]}"
    sdata=("${ports[5]}" "${ports[6]}")
    sports=("${ports[7]}" "${ports[8]}" "${ports[9]}")
    cports=("${ports[@]:10:6}")
    cbus=("${ports[@]:16:6}")
    ksasl="${ports[22]}" koauth="${ports[23]}" kwrong="${ports[24]}" kmtls="${ports[25]}"

    cd "$dir" # all servers get DIR as working directory; stop relies on it

    # ---- Cluster nodes, first ----
    # A cluster primary calls the cluster ok only 2 s after its own start, so
    # these start before anything else. Explicit bus ports (the default, port
    # + 10000, may not be free).
    for i in 1 2 3 4 5 6; do
        port="${cports[$((i - 1))]}"
        caddrs+=("127.0.0.1:$port")
        write_cmd "$dir" "cluster$i" "$port" "$server" --port "$port" --bind 127.0.0.1 \
            --protected-mode yes --save '' --appendonly no --dir "$dir" \
            --dbfilename "cluster$i.rdb" --cluster-enabled yes \
            --cluster-config-file "$dir/cluster$i-nodes.conf" \
            --cluster-node-timeout "$node_timeout" --cluster-port "${cbus[$((i - 1))]}" \
            --repl-diskless-sync-delay 0 --logfile "$dir/cluster$i.log" --daemonize no
        launch "$dir" "cluster$i"
    done

    # ---- TLS material (Redis TLS, the broker's secured listeners) ----
    make_certs "$dir/tls" >>"$dir/tls.log" 2>&1 ||
        fail "openssl could not make the test certificates" "$dir/tls.log"

    # ---- Kafka ----
    mkdir -p "$dir/kafka-data"
    # The SCRAM user's password: new for every stack (hex: no quoting issue
    # in --add-scram's bracket syntax), given to the tests through DIR/env.
    scram_password="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    if compgen -G "$libs/log4j-core-*.jar" >/dev/null; then
        major=4
        cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
# "Kafka Server started", "[KafkaRaftServer nodeId=1] Kafka Server started"
logger.server.name = kafka.server
logger.server.level = info
logger.raftserver.name = kafka.Kafka
logger.raftserver.level = info
EOF
        logopt="-Dlog4j2.configurationFile=$dir/log4j2.properties"
    else
        major=3
        cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.Target=System.out
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server=INFO
EOF
        logopt="-Dlog4j.configuration=file:$dir/log4j.properties"
    fi
    {
        cat <<EOF
# single-node KRaft test broker written by scripts/stack.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$kport,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$ksasl,OAUTH://127.0.0.1:$koauth,WRONGNAME://127.0.0.1:$kwrong,MTLS://127.0.0.1:$kmtls
advertised.listeners=PLAINTEXT://127.0.0.1:$kport,SASL_SSL://127.0.0.1:$ksasl,OAUTH://127.0.0.1:$koauth,WRONGNAME://127.0.0.1:$kwrong,MTLS://127.0.0.1:$kmtls
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,OAUTH:SASL_SSL,WRONGNAME:SASL_SSL,MTLS:SSL
# SASL_SSL: SCRAM-SHA-512 (the user is created by the format, --add-scram);
# WRONGNAME: the same with a certificate for wrong.example only; OAUTH:
# OAUTHBEARER with Kafka's default, unsecured JWT validator (any unsigned
# token with a sub claim); MTLS: TLS with a client certificate signed by the
# CA required. All present PEM key material (Kafka 3.x/4.x).
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/kafka-server.pem
listener.name.wrongname.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.wrongname.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.wrongname.ssl.keystore.type=PEM
listener.name.wrongname.ssl.keystore.location=$dir/tls/kafka-wrongname.pem
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="k2r-broker";
listener.name.oauth.ssl.keystore.type=PEM
listener.name.oauth.ssl.keystore.location=$dir/tls/kafka-server.pem
listener.name.mtls.ssl.keystore.type=PEM
listener.name.mtls.ssl.keystore.location=$dir/tls/kafka-server.pem
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$dir/tls/ca.crt
listener.name.mtls.ssl.client.auth=required
log.dirs=$dir/kafka-data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
        if [ "$major" = 4 ]; then
            cat <<EOF
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
EOF
        fi
    } >"$dir/server.properties"

    # AppCDS: the first broker run dumps the classes it loaded into DIR at its
    # exit (stop moves the archive into the cache, next to libs); later runs
    # map that archive and start about 40% faster. -Xshare:auto falls back
    # silently when the archive does not fit this JVM or classpath.
    cds=() fmt_cds=()
    # one archive per JVM build: its name carries a checksum of the java
    # binary's real path, size and time, so a JDK update makes a new one;
    # and per broker setup (-s2: the TLS and SASL listeners load classes the
    # archive of a plaintext-only broker lacks)
    jsa="$(readlink -f "$(command -v java)")"
    jsa="$(dirname "$libs")/kafka-$(stat -L -c '%n %s %Y' "$jsa" | cksum | cut -d' ' -f1)-s2.jsa"
    if [ "${K2R_KAFKA_CDS:-1}" = 1 ]; then
        if [ -s "$jsa" ]; then
            cds=(-XX:SharedArchiveFile="$jsa" -Xshare:auto)
            fmt_cds=("${cds[@]}")
        else
            cds=(-XX:ArchiveClassesAtExit="$dir/kafka.jsa")
            echo "$jsa" >"$dir/kafka.jsa.dest"
        fi
    fi
    # The tests' broker starts fast and stays small: the serial collector
    # and the first JIT tier only. The benchmarks' (K2R_KAFKA_JVM=kafka)
    # runs with the "typical arguments" of Kafka's operations guide (Java
    # Version: a 6 GiB heap, G1 with 20 ms pause goals, full JIT), so that
    # its answer times are a broker's, not a test fixture's: under the tests'
    # one, produce acknowledgements at 5,000 records/s had a p99 of 5.2-9.5
    # ms, under this one 1.5-3.9 ms (README "Figures"); with a 1 GiB heap
    # G1 still paused 4-8 ms about every second, with 6 GiB every 6 s.
    # K2R_KAFKA_JVM_EXTRA adds options (GC logging, say) to this one.
    case "${K2R_KAFKA_JVM:-test}" in
    test) jopts=(-Xms512m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1) ;;
    kafka) jopts=(-Xmx6g -Xms6g -XX:MetaspaceSize=96m -XX:+UseG1GC
        -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:G1HeapRegionSize=16M
        -XX:MinMetaspaceFreeRatio=50 -XX:MaxMetaspaceFreeRatio=80 -XX:+ExplicitGCInvokesConcurrent
        ${K2R_KAFKA_JVM_EXTRA:-}) ;;
    *) die "K2R_KAFKA_JVM must be test or kafka, not '$K2R_KAFKA_JVM'" ;;
    esac
    jopts+=(-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        -Djava.net.preferIPv4Stack=true "${cds[@]}" "$logopt")
    cid="$(cluster_id)"
    echo "== kafka.tools.StorageTool format (cluster id $cid)" >>"$dir/kafka.log"
    # The format (a JVM: about a second) runs in the background, in DIR with a
    # PID file (stop stops it), while the Redis-family servers start.
    (cd "$dir" && exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Djava.awt.headless=true "${fmt_cds[@]}" "$logopt" \
        -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]" \
        </dev/null >>"$dir/kafka.log" 2>&1) &
    fmtpid=$!
    echo "$fmtpid" >"$dir/kafka-format.pid"


    # ---- Redis ----
    # Early errors (before the logfile opens) land in the same log (launch).
    write_cmd "$dir" redis "$rport" "$server" --port "$rport" --bind 127.0.0.1 \
        --protected-mode yes --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" --daemonize no
    launch "$dir" redis

    # ---- Redis with TLS ----
    write_cmd "$dir" redis-tls "$tplain" "$server" --port "$tplain" --tls-port "$tport" \
        --bind 127.0.0.1 --protected-mode yes --save '' --appendonly no --dir "$dir" \
        --tls-cert-file "$dir/tls/server.crt" --tls-key-file "$dir/tls/server.key" \
        --tls-ca-cert-file "$dir/tls/ca.crt" --tls-auth-clients optional \
        --logfile "$dir/redis-tls.log" --daemonize no
    launch "$dir" redis-tls

    # ---- Sentinel: the data nodes ----
    # Config files, not options: Sentinel rewrites them (CONFIG REWRITE) when
    # it changes a node's role, so start-node brings a node back in the role
    # it last had. No diskless-sync delay: a replica syncs at once.
    for i in 1 2; do
        {
            cat <<EOF
# Sentinel data node $i written by scripts/stack.sh
port ${sdata[$((i - 1))]}
bind 127.0.0.1
protected-mode yes
daemonize no
dir $dir
dbfilename sentinel-data$i.rdb
save ""
appendonly no
logfile $dir/sentinel-data$i.log
repl-diskless-sync-delay 0
EOF
            [ "$i" = 1 ] || echo "replicaof 127.0.0.1 ${sdata[0]}"
        } >"$dir/sentinel-data$i.conf"
        write_cmd "$dir" "sentinel-data$i" "${sdata[$((i - 1))]}" "$server" "$dir/sentinel-data$i.conf"
        launch "$dir" "sentinel-data$i"
    done

    # ---- Cluster ----
    # Creating the cluster waits for the nodes to agree (its own 1 s polls):
    # it runs in the background, in DIR (stop stops it), while Kafka starts.
    for i in 1 2 3 4 5 6; do
        wait_ready "$dir" "cluster$i" "$d20" || fail "$why" "$dir/cluster$i.log"
    done
    (cd "$dir" && exec "$cli" --cluster create "${caddrs[@]}" --cluster-replicas 1 --cluster-yes \
        </dev/null >>"$dir/cluster-create.log" 2>&1) &
    ccpid=$!
    echo "$ccpid" >"$dir/cluster-create.pid"

    # ---- Kafka, once formatted ----
    while running "$fmtpid"; do
        [ "$SECONDS" -lt "$d120" ] || fail "formatting the Kafka log dir did not end in time" "$dir/kafka.log"
        sleep 0.05
    done
    wait "$fmtpid" || fail "formatting the Kafka log dir failed" "$dir/kafka.log"
    rm -f "$dir/kafka-format.pid"
    echo "== kafka.Kafka $dir/server.properties" >>"$dir/kafka.log"
    write_cmd "$dir" kafka "$kport" java "${jopts[@]}" -cp "$libs/*" kafka.Kafka \
        "$dir/server.properties"
    launch "$dir" kafka

    # ---- Sentinels, once the replica has synced ----
    # With the replica's link already up when a sentinel first asks it (INFO,
    # then only every 10 s), the sentinel sees master-link-status ok at once.
    # Each sentinel's config names the replica and the other two sentinels
    # (with the run ids given here), so nobody waits for hello messages.
    for i in 1 2; do
        wait_ready "$dir" "sentinel-data$i" "$d20" ||
            fail "$why" "$dir/sentinel-data$i.log"
    done
    until rcli "${sdata[1]}" info replication | tr -d '\r' | grep -qx 'master_link_status:up'; do
        [ "$SECONDS" -lt "$d30" ] ||
            fail "the Sentinel replica did not sync with its primary in time" "$dir/sentinel-data2.log"
        sleep 0.1
    done
    for i in 1 2 3; do
        sids+=("$(run_id)")
    done
    for i in 1 2 3; do
        {
            cat <<EOF
# sentinel $i written by scripts/stack.sh; the sentinel rewrites it
port ${sports[$((i - 1))]}
bind 127.0.0.1
daemonize no
dir $dir
logfile $dir/sentinel$i.log
sentinel myid ${sids[$((i - 1))]}
sentinel resolve-hostnames no
sentinel announce-hostnames no
sentinel announce-ip 127.0.0.1
sentinel monitor $sname 127.0.0.1 ${sdata[0]} 2
sentinel down-after-milliseconds $sname $down_after
sentinel failover-timeout $sname $failover_timeout
sentinel parallel-syncs $sname 1
sentinel known-replica $sname 127.0.0.1 ${sdata[1]}
EOF
            for others in 1 2 3; do
                [ "$others" = "$i" ] ||
                    echo "sentinel known-sentinel $sname 127.0.0.1 ${sports[$((others - 1))]} ${sids[$((others - 1))]}"
            done
        } >"$dir/sentinel$i.conf"
        write_cmd "$dir" "sentinel$i" "${sports[$((i - 1))]}" "$server" "$dir/sentinel$i.conf" --sentinel
        launch "$dir" "sentinel$i"
    done

    # ---- wait for all ----
    # The broker last: the others are ready while its JVM still starts (the
    # cluster's primaries need 2 s from their start before they call the
    # cluster ok; its creation polls once a second).
    wait_ready "$dir" redis "$d20" || fail "$why" "$dir/redis.log"
    wait_ready "$dir" redis-tls "$d20" || fail "$why" "$dir/redis-tls.log"
    for i in 1 2 3; do
        wait_ready "$dir" "sentinel$i" "$d30" || fail "$why" "$dir/sentinel$i.log"
    done
    while running "$ccpid"; do
        [ "$SECONDS" -lt "$d30" ] ||
            fail "$cli --cluster create did not finish in time" "$dir/cluster-create.log"
        sleep 0.1
    done
    cstatus=0
    wait "$ccpid" || cstatus=$?
    rm -f "$dir/cluster-create.pid"
    [ "$cstatus" -eq 0 ] || fail "$cli --cluster create failed (exit $cstatus)" "$dir/cluster-create.log"
    until cluster_ready 6 "${cports[@]}"; do
        [ "$SECONDS" -lt "$d30" ] ||
            fail "the cluster nodes did not agree (cluster_state:ok, same slots, replicas linked) in time" \
                "$dir/cluster1.log"
        sleep 0.1
    done
    until sentinels_ready "$sname" "${sdata[0]}" "${sports[@]}"; do
        [ "$SECONDS" -lt "$d30" ] ||
            fail "the sentinels did not all see the primary, the replica and each other in time" \
                "$dir/sentinel1.log"
        sleep 0.1
    done
    wait_ready "$dir" kafka "$d120" || fail "$why" "$dir/kafka.log"

    cat >"$dir/env" <<EOF
K2R_TEST_KAFKA_BROKERS=127.0.0.1:$kport
K2R_TEST_KAFKA_SASL_SSL_BOOTSTRAP=127.0.0.1:$ksasl
K2R_TEST_KAFKA_OAUTH_BOOTSTRAP=127.0.0.1:$koauth
K2R_TEST_KAFKA_WRONGNAME_BOOTSTRAP=127.0.0.1:$kwrong
K2R_TEST_KAFKA_MTLS_BOOTSTRAP=127.0.0.1:$kmtls
K2R_TEST_KAFKA_SCRAM_USER=$scram_user
K2R_TEST_KAFKA_SCRAM_PASSWORD=$scram_password
K2R_TEST_KAFKA_CA_FILE=$dir/tls/ca.crt
K2R_TEST_REDIS_HOST=127.0.0.1
K2R_TEST_REDIS_PORT=$rport
K2R_TEST_REDIS_TLS_PORT=$tport
K2R_TEST_REDIS_TLS_PLAIN_PORT=$tplain
K2R_TEST_TLS_DIR=$dir/tls
K2R_TEST_REDIS_FLAVOR=$flavor
K2R_TEST_REDIS_VERSION=$version
K2R_TEST_REDIS_CLI=$cli
K2R_TEST_SENTINEL_MASTER=$sname
K2R_TEST_SENTINEL_ADDRS=127.0.0.1:${sports[0]},127.0.0.1:${sports[1]},127.0.0.1:${sports[2]}
K2R_TEST_SENTINEL_DATA_PORTS=${sdata[0]},${sdata[1]}
K2R_TEST_SENTINEL_DOWN_AFTER_MS=$down_after
K2R_TEST_CLUSTER_ADDRS=$cluster_primaries
K2R_TEST_CLUSTER_REPLICA_ADDRS=$cluster_replicas
K2R_TEST_CLUSTER_NODE_TIMEOUT_MS=$node_timeout
K2R_TEST_STACK_DIR=$dir
EOF
    trap - INT TERM
    echo "stack.sh: Kafka $(basename "$(dirname "$libs")" | sed 's/^kafka-//') at 127.0.0.1:$kport (SASL_SSL $ksasl, OAUTHBEARER $koauth, wrong-name TLS $kwrong, mTLS $kmtls; pid $(cat "$dir/kafka.pid")), $flavor $version at 127.0.0.1:$rport (pid $(cat "$dir/redis.pid")), TLS at 127.0.0.1:$tport (plain $tplain, pid $(cat "$dir/redis-tls.pid")), Sentinel $sname at ${sports[*]} (data ${sdata[*]}), Cluster $cluster_primaries (replicas $cluster_replicas); ready in $((SECONDS - t0)) s; state in $dir" >&2
}

case "$#:${1:-}" in
3:start-node) node_cmd start "$2" "$3" ;;
3:stop-node) node_cmd stop "$2" "$3" ;;
2:start) start_stack "$2" ;;
2:stop) stop_stack "$2" ;;
2:start-redis | 2:start-redis-tls | 2:start-kafka) restart_server "${1#start-}" "$2" ;;
2:stop-redis | 2:stop-redis-tls | 2:stop-kafka) stop_servers "$2" "${1#stop-}" ;;
*) usage ;;
esac

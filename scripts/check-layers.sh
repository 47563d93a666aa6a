#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# check-layers.sh - the include rules that keep the core pure and the modules
# in layers (issue 11). Fails, with one line per violation, when
#   (a) the k2r include graph has a cycle: module M uses module N when
#       include/k2r/M.h or src/M.c(pp) includes "k2r/N.h". Headers alone
#       are checked this way too (M.h -> N.h is an edge M -> N), and so is
#       the cycle that once ran through a .c file (log.c -> rules.h ->
#       config.h -> redis.h, while redis.c -> log.h), or
#   (b) a core file (src/M.c or src/M.cpp, its private src/M_int.h, and
#       include/k2r/M.h, for each M in CORE) includes an I/O header: librdkafka, hiredis, libmicrohttpd,
#       sockets, name resolution, poll, OpenSSL, or an edge module's header,
#   (c) given the core's static library (the Makefile builds libk2r_core.a
#       from CORE and log.c), a k2r_ symbol it uses is defined outside it:
#       the core would not link without the edges or the loop.
# Run from anywhere; `make lint`, `make layers` and `make test` run it.
#
# usage: scripts/check-layers.sh [CORE_LIBRARY]
#
# A new core module is one word in CORE. pthread is not I/O, and log.h is
# not an edge: core files may include both.
set -eu

CORE="config rules schema map json envelope metrics utf8 buf errors clock redis_url addr batch msgview stats deadletter slots"

# Includes a core file may have although they are on the list below, as
# "file:header" words, each with its reason. config.c hands kafka.properties
# to rd_kafka_conf_set() to report librdkafka's own message at the property's
# line: the conf API only, no client is created and nothing connects.
ALLOW="config.c:librdkafka/rdkafka.h"

# Headers that mean I/O, as extended regular expressions on the name between
# the <> or "" of an #include line.
IO_HEADERS='^(librdkafka/rdkafka\.h|hiredis/.*|microhttpd\.h|sys/socket\.h|netinet/.*|arpa/inet\.h|netdb\.h|poll\.h|openssl/.*|k2r/kafka\.h|k2r/redis\.h|k2r/http\.h|k2r/bridge\.h)$'

cd "$(dirname "$0")/.."
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The #include lines of a file, one header name a line (no <> or "").
includes() {
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' "$1"
}

# (a) Edges "from to" between modules, then a depth-first search for back
# edges; each cycle found is printed as a path a -> b -> a.
for f in include/k2r/*.h src/*.c src/*.cpp; do
    [ -f "$f" ] || continue
    from=${f##*/}
    from=${from%.*}
    includes "$f" | sed -n 's|^k2r/\(.*\)\.h$|\1|p' | while read -r to; do
        [ "$to" = "$from" ] || echo "$from $to"
    done
done | sort -u >"$tmp/edges"

awk '
    { adj[$1] = adj[$1] " " $2; nodes[$1] = 1; nodes[$2] = 1 }
    function visit(n,    i, j, k, m, path) {
        state[n] = 1; stack[++depth] = n
        k = split(adj[n], m, " ")
        for (i = 1; i <= k; i++) {
            if (state[m[i]] == 1) {
                for (j = depth; stack[j] != m[i]; j--) ;
                path = ""
                for (; j <= depth; j++) path = path stack[j] " -> "
                print "include cycle: " path m[i] " (module -> module whose header it includes)"
                found = 1
            } else if (state[m[i]] == 0) {
                visit(m[i])
            }
        }
        depth--; state[n] = 2
    }
    END {
        for (n in nodes) if (state[n] == 0) visit(n)
        exit found
    }
' "$tmp/edges" || fail=1

# (b) The core's includes.
for m in $CORE; do
    for f in "src/$m.c" "src/$m.cpp" "src/${m}_int.h" "include/k2r/$m.h"; do
        [ -f "$f" ] || continue
        for inc in $(includes "$f" | grep -E "$IO_HEADERS" || true); do
            case " $ALLOW " in
            *" ${f##*/}:$inc "*) continue ;;
            esac
            echo "$f: core file includes I/O header $inc"
            fail=1
        done
    done
done

# (c) The core library on its own.
if [ "$#" -ge 1 ]; then
    if [ ! -f "$1" ]; then
        echo "check-layers.sh: no core library at $1" >&2
        exit 1
    fi
    nm -u "$1" | awk '$2 ~ /^k2r_/ { print $2 }' | sort -u >"$tmp/used"
    nm --defined-only "$1" | awk '$3 ~ /^k2r_/ { print $3 }' | sort -u >"$tmp/defined"
    for sym in $(comm -23 "$tmp/used" "$tmp/defined"); do
        echo "$1: the core uses $sym, which only the edges or the loop define"
        fail=1
    done
fi

exit $fail

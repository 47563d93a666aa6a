# SPDX-License-Identifier: Apache-2.0
# loopback.sh - sourced by the demo and the benchmarks: a free loopback port,
# and the bridge's /metrics read without curl (bash's /dev/tcp).

# A loopback port nothing listens on (a refused connection says so), in
# 20000-31999: below the kernel's ephemeral range, so no client socket is
# handed the same port.
free_port() {
    local p
    for p in $(shuf -i 20000-31999 -n 100); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    return 1
}

# metrics_text PORT: the bridge's /metrics (empty when it does not answer).
metrics_text() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3 &&
        cat <&3) 2>/dev/null || true
}

# metric PORT NAME: the sum of one family's samples on /metrics (0 if none).
metric() {
    metrics_text "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

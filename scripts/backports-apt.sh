#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# backports-apt.sh - runs apt-get or apt-cache against this Debian release's
# backports suite (on Debian 12: bookworm-backports), with package lists kept
# in the project's cache, so that packages only backports has (Valkey 8 on
# Debian 12) can be looked up and downloaded without adding backports to the
# system's own apt sources: nothing under /etc/apt changes, and no system
# package is upgraded to a backport by accident. The same pattern as
# scripts/trixie-apt.sh.
#
# The mirror is the one the system already uses for Debian (the URIs of its
# main archive in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list);
# the suite is VERSION_CODENAME-backports from /etc/os-release. Release files
# are checked against the system's debian-archive-keyring, as apt always does.
# The lists are refreshed when they are older than a day. The private state
# has an empty dpkg status: use it to look up (apt-cache policy|show) and to
# download (apt-get download NAME...); install the downloaded .deb files with
# the system's apt-get (`apt-get install ./NAME_VER_ARCH.deb ...`), which takes
# their dependencies from the system's own sources.
#
# usage: scripts/backports-apt.sh apt-get|apt-cache ARGS...
#   e.g. (cd "$(mktemp -d)" && scripts/backports-apt.sh apt-get download valkey-server)
#   K2R_CACHE_DIR=DIR   the cache root (default ~/.cache/kafka-redis-bridge)
set -euo pipefail

cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

[ "$#" -ge 1 ] || {
    echo "usage: $0 apt-get|apt-cache ARGS..." >&2
    exit 2
}
tool="$1"
shift
case "$tool" in
apt-get | apt-cache) ;;
*)
    echo "backports-apt.sh: '$tool' is neither apt-get nor apt-cache" >&2
    exit 2
    ;;
esac

# shellcheck disable=SC1091  # the system's file, read at run time
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || codename=""
if [ -z "$codename" ]; then
    echo "backports-apt.sh: /etc/os-release names no VERSION_CODENAME (not Debian?)" >&2
    exit 1
fi
suite="$codename-backports"
state="$cache/$suite-apt"

# Prints the URI of the system's Debian main archive (not its security one).
system_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             /(^|\n)Types:[^\n]*deb/ && /(^|\n)Components:[^\n]*main/ &&
             !/(^|\n)Suites:[^\n]*-security/ && /(^|\n)URIs:[^\n]*\/debian\/?( |$|\n)/ {
                 for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) {
                     split($i, u, /[ \t]+/); print u[2]; exit
                 }
             }' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" && $0 !~ /-security/ && $0 ~ / main( |$)/ {
                 for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit }
             }' /etc/apt/sources.list
    fi
}

mirror="$(system_mirror | head -1)"
if [ -z "$mirror" ]; then
    echo "backports-apt.sh: found no Debian archive in the system's apt sources" >&2
    exit 1
fi
[ -r "$keyring" ] || {
    echo "backports-apt.sh: $keyring is missing (package debian-archive-keyring)" >&2
    exit 1
}

mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
cat >"$state/backports.sources.new" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF
mv "$state/backports.sources.new" "$state/backports.sources"
: >"$state/status"

opts=(-o "Dir::Etc::sourcelist=$state/backports.sources" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
    -o "Dir::State::status=$state/status" -o "APT::Get::List-Cleanup=0")
# as root, apt would drop to _apt, which cannot write into a cache under ~root
[ "$(id -u)" -ne 0 ] || opts+=(-o APT::Sandbox::User=root)

# One refresh at a time per cache; lists younger than a day are kept.
exec 8>"$state/lock"
flock 8
if [ -z "$(find "$state/lists" -maxdepth 1 -name "*${suite}_InRelease" -mtime -1 2>/dev/null)" ]; then
    apt-get "${opts[@]}" update >&2
fi
flock -u 8
exec "$tool" "${opts[@]}" "$@"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# suite-apt.sh - runs apt-get or apt-cache against another Debian suite than
# the system's, with package lists kept in the project's cache, so that a
# Debian 12 machine can look up and fetch what only that suite has without
# adding it to the system's own apt sources: nothing under /etc/apt changes,
# and no system package is upgraded to the other suite's by accident.
#
#   trixie     Debian 13, binaries and sources (librdkafka 2.8's source
#              package: scripts/librdkafka.sh; the image's pins:
#              scripts/chart-check.sh)
#   backports  this release's backports (VERSION_CODENAME-backports from
#              /etc/os-release; on Debian 12 Valkey 8: scripts/deps.sh valkey)
#
# The mirror is the one the system already uses for Debian (the URIs of its
# main archive in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list).
# Release files are checked against the system's debian-archive-keyring, as
# apt always does (bookworm's keyring carries the keys trixie is signed
# with). The lists are refreshed when they are older than a day. The private
# state has an empty dpkg status: use it to look up (apt-cache policy|show)
# and to download (apt-get download NAME..., apt-get source NAME); install
# downloaded .deb files with the system's apt-get (`apt-get install
# ./NAME_VER_ARCH.deb ...`), which takes their dependencies from the
# system's own sources. scripts/trixie-apt.sh and scripts/backports-apt.sh
# are this script for one suite each.
#
# usage: scripts/suite-apt.sh trixie|backports apt-get|apt-cache ARGS...
#   K2R_CACHE_DIR=DIR   the cache root (default ~/.cache/kafka-redis-bridge)
set -euo pipefail

cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

[ "$#" -ge 2 ] || {
    echo "usage: $0 trixie|backports apt-get|apt-cache ARGS..." >&2
    exit 2
}
which="$1"
tool="$2"
shift 2
case "$tool" in
apt-get | apt-cache) ;;
*)
    echo "suite-apt.sh: '$tool' is neither apt-get nor apt-cache" >&2
    exit 2
    ;;
esac
case "$which" in
trixie)
    suite=trixie
    types="deb deb-src"
    state="$cache/trixie-apt"
    ;;
backports)
    # shellcheck disable=SC1091  # the system's file, read at run time
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || codename=""
    if [ -z "$codename" ]; then
        echo "suite-apt.sh: /etc/os-release names no VERSION_CODENAME (not Debian?)" >&2
        exit 1
    fi
    suite="$codename-backports"
    types="deb"
    state="$cache/$suite-apt"
    ;;
*)
    echo "suite-apt.sh: unknown suite '$which' (trixie or backports)" >&2
    exit 2
    ;;
esac

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
    echo "suite-apt.sh: found no Debian archive in the system's apt sources" >&2
    exit 1
fi
[ -r "$keyring" ] || {
    echo "suite-apt.sh: $keyring is missing (package debian-archive-keyring)" >&2
    exit 1
}

mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
cat >"$state/suite.sources.new" <<EOF
Types: $types
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF
mv "$state/suite.sources.new" "$state/suite.sources"
: >"$state/status"

opts=(-o "Dir::Etc::sourcelist=$state/suite.sources" -o "Dir::Etc::sourceparts=-"
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

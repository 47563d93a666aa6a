#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# trixie-apt.sh - runs apt-get or apt-cache against Debian 13 (trixie), with
# package lists kept in the project's cache, so that a Debian 12 machine can
# look up trixie's packages and fetch its source packages without adding
# trixie to the system's own apt sources (nothing under /etc/apt changes, and
# no system package can be upgraded to trixie's by accident).
#
# The mirror is the one the system already uses for Debian (the URIs of its
# main archive in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list).
# Release files are checked against the system's debian-archive-keyring, as
# apt always does; bookworm's keyring carries the keys trixie is signed with.
# The lists are refreshed when they are older than a day.
#
# usage: scripts/trixie-apt.sh apt-get|apt-cache ARGS...
#   K2R_CACHE_DIR=DIR   the cache root (default ~/.cache/kafka-redis-bridge)
set -euo pipefail

cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
state="$cache/trixie-apt"
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
    echo "trixie-apt.sh: '$tool' is neither apt-get nor apt-cache" >&2
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
    echo "trixie-apt.sh: found no Debian archive in the system's apt sources" >&2
    exit 1
fi
[ -r "$keyring" ] || {
    echo "trixie-apt.sh: $keyring is missing (package debian-archive-keyring)" >&2
    exit 1
}

mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
cat >"$state/trixie.sources.new" <<EOF
Types: deb deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: $keyring
EOF
mv "$state/trixie.sources.new" "$state/trixie.sources"
: >"$state/status"

opts=(-o "Dir::Etc::sourcelist=$state/trixie.sources" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
    -o "Dir::State::status=$state/status" -o "APT::Get::List-Cleanup=0")

# One refresh at a time per cache; lists younger than a day are kept.
exec 8>"$state/lock"
flock 8
if [ -z "$(find "$state/lists" -maxdepth 1 -name '*trixie_InRelease' -mtime -1 2>/dev/null)" ]; then
    apt-get "${opts[@]}" update >&2
fi
flock -u 8
exec "$tool" "${opts[@]}" "$@"

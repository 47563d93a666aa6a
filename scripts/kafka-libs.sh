#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kafka-libs.sh - makes sure the jars of a real Apache Kafka broker are in the
# cache and prints their folder (for `java -cp 'DIR/*' kafka.Kafka ...`) on
# stdout; everything else goes to stderr. The jars come from Maven Central
# through tests/kafka/pom.xml (`mvn dependency:copy-dependencies`) into
#   ${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}/kafka-VERSION/libs
# outside the work tree. A folder is used only once its marker file
# kafka-VERSION/complete exists, so a second run asks no registry at all.
#
# Kafka 4.1.x is preferred; 3.9.x (profile kafka-3.9 of the POM, logging
# through reload4j) is the fallback when 4.1.x cannot be had.
#
# usage: scripts/kafka-libs.sh
#   K2R_KAFKA_VERSION=V   use only this version (4.x or 3.9.x), no fallback
#   K2R_CACHE_DIR=DIR     the cache root
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/../tests/kafka/pom.xml"
cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"

if [ -n "${K2R_KAFKA_VERSION:-}" ]; then
    versions=("$K2R_KAFKA_VERSION")
else
    versions=(4.1.2 3.9.1)
fi

# The POM profile that brings the logging binding of that version line.
profile_of() {
    case "$1" in
    3.*) echo kafka-3.9 ;;
    *) echo kafka-4 ;;
    esac
}

# Fetches version $1 into the cache; returns non-zero when Maven fails.
fetch() {
    local version="$1" dest="$cache/kafka-$1" tmp log
    tmp="$dest/libs.tmp.$$"
    log="$dest/mvn.log"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "kafka-libs.sh: fetching Kafka $version jars from Maven Central into $dest/libs" >&2
    if ! mvn -q -B -Dstyle.color=never -f "$pom" -P "$(profile_of "$version")" \
        -Dkafka.version="$version" -Dkafka.libs.dir="$tmp" \
        dependency:copy-dependencies >"$log" 2>&1; then
        echo "kafka-libs.sh: Maven could not fetch Kafka $version; the end of $log:" >&2
        tail -n 15 "$log" >&2
        rm -rf "$tmp"
        return 1
    fi
    if ! compgen -G "$tmp/kafka_2.13-$version.jar" >/dev/null; then
        echo "kafka-libs.sh: Maven ran but $tmp has no kafka_2.13-$version.jar" >&2
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$dest/libs"
    mv "$tmp" "$dest/libs"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$dest/complete"
}

mkdir -p "$cache"
# One fetch at a time per cache, also across parallel test runs.
exec 9>"$cache/kafka-libs.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

for version in "${versions[@]}"; do
    if [ -f "$cache/kafka-$version/complete" ] && [ -d "$cache/kafka-$version/libs" ]; then
        echo "$cache/kafka-$version/libs"
        exit 0
    fi
done
for version in "${versions[@]}"; do
    if fetch "$version"; then
        echo "$cache/kafka-$version/libs"
        exit 0
    fi
done
echo "kafka-libs.sh: no Kafka broker jars could be fetched (tried ${versions[*]})" >&2
exit 1

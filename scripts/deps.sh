#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deps.sh - installs the Debian packages that are missing for the named groups,
# and nothing else (idempotent: with everything present it only checks, with
# dpkg-query, and runs no apt command at all). When something is missing it
# runs `apt-get update` once, then one `apt-get install --no-install-recommends`.
# Not root and something missing: prints the apt command to run and exits 1.
#
# Everything it prints goes to stderr. Java, Maven, Node and npm count as present when `java` (17 or newer), `mvn`,
# `node` and `npm` are on PATH, whatever installed them (e.g. NodeSource's
# nodejs, which bundles npm and conflicts with Debian's npm package); on a
# fresh machine they come from Debian. Installing redis-server may start a
# system redis on 6379; nothing in this project uses that port.
#
# usage: scripts/deps.sh [group...]     (default: build test)
#   build  compilers and the libraries the bridge links; librdkafka 2.6.1 or
#          newer as librdkafka-dev where the distribution has it (Debian 13),
#          else what building Debian 13's source package needs
#          (scripts/librdkafka.sh, which the Makefile's deps target runs next)
#   test   kcat, redis-server, Java + Maven (the Kafka broker), Node + npm
#          (the webhook examples), socat, curl, procps, iproute2, python3,
#          python3-venv (scripts/python-shim.sh: confluent-kafka for the shim test)
#          and the dist group's
#          (no redis-sentinel: scripts/stack.sh runs its sentinels as
#          `redis-server FILE --sentinel`, and that package would only add a
#          system sentinel service on port 26379)
#   dist   what `make dist-check` needs: python3-yaml and python3-jsonschema
#          (scripts/check-schema.sh), systemd (systemd-analyze verify,
#          scripts/check-install.sh), man-db, groff-base and bsdextrautils
#          (col) for the man page
#   lint   clang, clang-tidy, clang-format, cppcheck
#   check  nothing extra: gcc's ASan/UBSan runtimes come with gcc
#   browser Debian's chromium, for the SSE gateway's browser test
#          (scripts/gateway-test.sh; playwright-core drives it, and downloads
#          no browser of its own)
#   fuzz   clang and libFuzzer (Debian 12 ships clang 14's libFuzzer in
#          libclang-rt-14-dev, with its sanitizer runtimes)
#   valkey valkey-server and valkey-tools (valkey-cli), for the test stack's
#          K2R_TEST_REDIS_FLAVOR=valkey. Debian 12 has Valkey 8 only in
#          bookworm-backports: when the system's own sources have no
#          candidate, the .deb files are downloaded with scripts/backports-apt.sh
#          (private apt state in the cache; /etc/apt is not changed) and
#          installed with `apt-get install ./FILE.deb...`, whose dependencies
#          come from the system's sources. Sentinels run as
#          `valkey-server FILE --sentinel`, so valkey-sentinel is not needed.
set -euo pipefail

pkgs_build=(gcc g++ make pkg-config libhiredis-dev libsimdjson-dev
    libjansson-dev libyaml-dev libcunit1-dev libmicrohttpd-dev libssl-dev)
rdkafka_min=2.6.1
# Build-Depends of Debian 13's librdkafka source package that its build here
# uses (not rapidjson: only its tests do), and what fetches and unpacks it.
pkgs_rdkafka_source=(dpkg-dev debian-archive-keyring liblz4-dev libsasl2-dev libssl-dev
    libzstd-dev zlib1g-dev libcurl4-openssl-dev)
pkgs_test=(kcat redis-server redis-tools socat maven openjdk-17-jre-headless nodejs npm
    curl ca-certificates procps iproute2 python3 python3-venv openssl)
pkgs_dist=(python3 python3-yaml python3-jsonschema systemd man-db groff-base bsdextrautils)
pkgs_lint=(clang clang-tidy clang-format cppcheck)
pkgs_check=()
pkgs_fuzz=(clang libclang-rt-14-dev)
pkgs_browser=(chromium)
# installed from the system's sources when they have them, else from backports
pkgs_valkey=(valkey-server valkey-tools)

# True when a Java of version 17 or newer is on PATH.
have_java17() {
    local v
    command -v java >/dev/null 2>&1 || return 1
    v="$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '$1 ~ /java\.specification\.version$/ { print $2 }')"
    [ -n "$v" ] && [ "${v%%.*}" -ge 17 ] 2>/dev/null
}

# True when something other than dpkg already provides the package's tool.
provided_elsewhere() {
    case "$1" in
    openjdk-17-jre-headless) have_java17 ;;
    maven) command -v mvn >/dev/null 2>&1 ;;
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

# Prints the packages that give the build librdkafka $rdkafka_min or newer:
# none when pkg-config already finds one, librdkafka-dev when apt's candidate
# is new enough, else the source package's build dependencies.
rdkafka_pkgs() {
    local candidate
    if PKG_CONFIG_PATH='' pkg-config --atleast-version="$rdkafka_min" rdkafka 2>/dev/null; then
        return
    fi
    candidate="$(apt-cache policy librdkafka-dev 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
    if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] &&
        dpkg --compare-versions "$candidate" ge "$rdkafka_min"; then
        echo librdkafka-dev
    else
        printf '%s\n' "${pkgs_rdkafka_source[@]}"
    fi
}

# Prints the names, among the arguments, of the packages dpkg has fully installed.
installed_of() {
    dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
        awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true
}

[ "$#" -gt 0 ] || set -- build test

wanted=()
for group in "$@"; do
    case "$group" in
    build)
        wanted+=("${pkgs_build[@]}")
        mapfile -t -O "${#wanted[@]}" wanted < <(rdkafka_pkgs)
        ;;
    test) wanted+=("${pkgs_test[@]}" "${pkgs_dist[@]}") ;;
    dist) wanted+=("${pkgs_dist[@]}") ;;
    lint) wanted+=("${pkgs_lint[@]}") ;;
    check) wanted+=("${pkgs_check[@]+"${pkgs_check[@]}"}") ;;
    fuzz) wanted+=("${pkgs_fuzz[@]}") ;;
    browser) wanted+=("${pkgs_browser[@]}") ;;
    valkey) wanted+=("${pkgs_valkey[@]}") ;;
    *)
        echo "deps.sh: unknown group '$group' (known: build test dist lint check fuzz browser valkey)" >&2
        exit 2
        ;;
    esac
done

[ "${#wanted[@]}" -gt 0 ] || exit 0
have=" $(installed_of "${wanted[@]}" | tr '\n' ' ') "

missing=()
for pkg in "${wanted[@]}"; do
    case "$have" in
    *" $pkg "*) continue ;;
    esac
    if provided_elsewhere "$pkg"; then
        continue
    fi
    case " ${missing[*]+"${missing[*]}"} " in
    *" $pkg "*) ;;
    *) missing+=("$pkg") ;;
    esac
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: not root; install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    case " ${missing[*]} " in
    *" valkey-"*)
        echo "  (on Debian 12 the valkey packages are in bookworm-backports: download them with" >&2
        echo "   scripts/backports-apt.sh apt-get download ..., then sudo apt-get install ./*.deb)" >&2
        ;;
    esac
    exit 1
fi
# apt's chatter goes to stderr: callers may be capturing stdout.
apt-get update >&2

# Missing packages that the system's sources have no candidate for and the
# backports suite has (Valkey on Debian 12) are downloaded from backports
# into a temporary folder and installed as files, in the same apt-get run.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
debs_dir=""
trap '[ -z "$debs_dir" ] || rm -rf -- "$debs_dir"' EXIT
from_system=() from_backports=()
for pkg in "${missing[@]}"; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
    case "$pkg" in
    valkey-*)
        if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
            from_backports+=("$pkg")
            continue
        fi
        ;;
    esac
    from_system+=("$pkg")
done
if [ "${#from_backports[@]}" -gt 0 ]; then
    echo "deps.sh: downloading ${from_backports[*]} from backports (scripts/backports-apt.sh)" >&2
    debs_dir="$(mktemp -d "${TMPDIR:-/tmp}/k2r-debs.XXXXXX")"
    (cd "$debs_dir" && "$here/backports-apt.sh" apt-get download "${from_backports[@]}" >&2)
    for f in "$debs_dir"/*.deb; do
        [ -f "$f" ] || continue
        from_system+=("$f")
    done
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${from_system[@]}" >&2

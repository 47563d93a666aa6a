#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# librdkafka.sh - makes sure the bridge builds against librdkafka 2.6.1 or
# newer. The system's (pkg-config rdkafka) is used as it is when it is new
# enough (Debian 13 has 2.8.0). Where it is older (Debian 12 has 2.0.2), the
# current Debian 13 source package is fetched with apt (scripts/trixie-apt.sh:
# Debian's own client and mirror, the system's archive keyring), verified,
# and built once into
#   ${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}/librdkafka/DEBIAN-VERSION
# with `librdkafka/current` pointing at it. A folder is used only once its
# marker file `complete` exists. One build costs about a minute on 2 cores.
#
# Verification, in the order it happens: apt checks trixie's InRelease
# signature against the system's keyring and every downloaded file against the
# signed Sources index; this script then checks the .dsc's Checksums-Sha256
# itself; dpkg-source checks them once more while it unpacks and applies
# Debian's patches.
#
# The Makefile links that build statically (rdkafka-static.pc): the installed
# binary, the test binaries and the container need no cache folder, rpath or
# LD_LIBRARY_PATH, and the shared libraries it needs in turn (OpenSSL, Cyrus
# SASL, zstd, lz4, zlib, libcurl) stay the system's own. The source's
# LICENSES.txt (librdkafka's licence and those of the code it bundles) is kept
# as share/doc/librdkafka/LICENSES.txt: `make install` ships it beside the
# statically linked binary.
#
# usage: scripts/librdkafka.sh ensure          build when needed (progress on stderr)
#        scripts/librdkafka.sh pkgconfig-dir   print the built library's
#                                              pkgconfig folder, or nothing when
#                                              the system's is used
#   K2R_CACHE_DIR=DIR   the cache root
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
root="$cache/librdkafka"
min_version=2.6.1

system_is_new_enough() {
    PKG_CONFIG_PATH='' pkg-config --atleast-version="$min_version" rdkafka 2>/dev/null
}

built() {
    [ -f "$root/current/complete" ] && [ -f "$root/current/lib/pkgconfig/rdkafka-static.pc" ] &&
        [ -f "$root/current/share/doc/librdkafka/LICENSES.txt" ]
}

# Checks every file the .dsc names against its Checksums-Sha256 section.
verify_dsc() {
    local dsc="$1" dir sums
    dir="$(dirname "$dsc")"
    sums="$(awk '/^Checksums-Sha256:/ { on = 1; next } on && /^ / { print $1 "  " $3; next } { on = 0 }' "$dsc")"
    if [ -z "$sums" ]; then
        echo "librdkafka.sh: $dsc has no Checksums-Sha256" >&2
        return 1
    fi
    (cd "$dir" && sha256sum --quiet --strict -c -) <<<"$sums"
}

build() {
    local work log version dsc src dest jobs
    work="$(mktemp -d "$cache/librdkafka-build.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    log="$work/build.log"

    echo "librdkafka.sh: the system's librdkafka is older than $min_version;" \
        "building Debian 13's from its source package (once, about a minute)" >&2
    (cd "$work" && "$here/trixie-apt.sh" apt-get -o APT::Sandbox::User=root \
        source --download-only librdkafka) >"$log" 2>&1 || {
        tail -20 "$log" >&2
        echo "librdkafka.sh: apt-get source librdkafka (trixie) failed" >&2
        return 1
    }
    dsc="$(ls "$work"/librdkafka_*.dsc)"
    verify_dsc "$dsc"
    version="$(awk '/^Version:/ { print $2; exit }' "$dsc")"
    if ! dpkg --compare-versions "$version" ge "$min_version"; then
        echo "librdkafka.sh: Debian 13 has librdkafka $version, older than $min_version" >&2
        return 1
    fi
    # dpkg-source cannot check the .dsc's own OpenPGP signature (the
    # uploader's key is in no keyring a Debian 12 machine has) and says so;
    # it still checks the checksums, and the .dsc came through the signed
    # Sources index.
    dpkg-source -x "$dsc" "$work/src" >>"$log" 2>&1 || {
        tail -20 "$log" >&2
        return 1
    }
    src="$work/src"
    dest="$root/$version"
    rm -rf "$dest"
    jobs="$(nproc 2>/dev/null || echo 2)"
    echo "librdkafka.sh: building librdkafka $version into $dest" >&2
    (
        cd "$src"
        ./configure --prefix="$dest" --enable-ssl --enable-sasl --enable-zstd \
            --enable-lz4-ext --enable-curl
        make -j"$jobs" libs
        make install-subdirs
        # The licences of librdkafka and of the code it bundles: a binary
        # that links it statically carries their notices (make install-bin).
        install -D -m 0644 LICENSES.txt "$dest/share/doc/librdkafka/LICENSES.txt"
    ) >>"$log" 2>&1 || {
        tail -30 "$log" >&2
        echo "librdkafka.sh: building librdkafka $version failed (log above)" >&2
        rm -rf "$dest"
        return 1
    }
    cp "$log" "$dest/build.log"
    touch "$dest/complete"
    ln -sfn "$version" "$root/current"
    echo "librdkafka.sh: librdkafka $version is in $dest" >&2
}

case "${1:-}" in
ensure)
    system_is_new_enough && exit 0
    built && exit 0
    mkdir -p "$cache" "$root"
    exec 9>"$root/build.lock"
    flock 9
    built || build
    ;;
pkgconfig-dir)
    system_is_new_enough && exit 0
    built && echo "$root/current/lib/pkgconfig"
    exit 0
    ;;
*)
    echo "usage: $0 ensure|pkgconfig-dir" >&2
    exit 2
    ;;
esac

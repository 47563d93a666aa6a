#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-install.sh - `make install` as a packager and an operator meet it.
# Part of `make test` (and `make dist-check`). Checks:
#   1. make install DESTDIR=D (PREFIX=/usr/local, no shim built) installs
#      exactly the tree of tests/fixtures/install/usr-local.txt (types,
#      modes, paths), librdkafka's licences included when it is linked in
#      statically, and they are LICENSES.txt of the source it was built from;
#   2. the config it installs is the example with its schema line pointing at
#      the installed schema, and `BIN check` accepts it;
#   3. a second make install keeps an edited config byte for byte (and says
#      so), and leaves the tree as it was;
#   4. PREFIX=/usr with a shim library (a symlink to a versioned file, as a
#      build with a soname makes) and its header: the tree of
#      tests/fixtures/install/usr.txt, the config in /etc, the symlink kept;
#   5. the unit's Exec lines name the installed binary and config;
#   6. the man page: no groff warning, its NAME line is what whatis shows,
#      and every option and command of --help is in the rendered page;
#   7. systemd-analyze verify accepts the unit installed under a real prefix
#      (binary and man page where the unit says), and systemd-analyze
#      security --offline rates its exposure at most 2.0. Without
#      systemd-analyze this fails, saying so: scripts/deps.sh test installs it.
#
# usage: scripts/check-install.sh BIN
# Prints one line per check, then "install: N passed, N failed"; exits 1
# when any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: scripts/check-install.sh BIN}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 022
fixtures=tests/fixtures/install
# Run by `make test`, this must not inherit the outer make's install
# directories, which make exports (make test PREFIX=/opt would move every
# tree); BUILD stays, so that the binary installed is the one built.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES PREFIX DESTDIR bindir libdir includedir datadir \
    mandir docdir sysconfdir systemdunitdir SHIM_LIB SHIM_HEADER

. scripts/checks.sh

# The tree under a directory: type and mode, then the path.
listing() {
    (cd "$1" && find . -mindepth 1 -printf '%M %P\n' | LC_ALL=C sort -k2)
}

# usage: install_into DIR [make variables...]   (make's output in DIR.log)
install_into() {
    local dest="$1"
    shift
    make -s --no-print-directory install DESTDIR="$dest" \
        SHIM_LIB="$work/no-shim/libk2r_shim.so" SHIM_HEADER="$work/no-shim/shim.h" "$@" \
        >"$dest.log" 2>&1 || {
        cat "$dest.log"
        return 1
    }
}

# The fixtures list librdkafka's licences (LICENSES.librdkafka.txt), which
# are installed when it is linked in statically; with the system's (shared)
# librdkafka, its package carries them and the tree has no such file.
tree_is() {
    listing "$1" >"$work/listing"
    if [ -n "$(scripts/librdkafka.sh pkgconfig-dir)" ]; then
        cp "$2" "$work/want"
    else
        grep -v '/LICENSES\.librdkafka\.txt$' "$2" >"$work/want"
    fi
    diff -u "$work/want" "$work/listing"
}

usr_local() {
    local pc notice="$work/d1/usr/local/share/doc/kafka-redis-bridge/LICENSES.librdkafka.txt"
    install_into "$work/d1" && tree_is "$work/d1" "$fixtures/usr-local.txt" || return 1
    pc="$(scripts/librdkafka.sh pkgconfig-dir)"
    [ -z "$pc" ] || { cmp "$pc/../../share/doc/librdkafka/LICENSES.txt" "$notice" &&
        grep -q '^librdkafka - Apache Kafka C driver library' "$notice"; }
}

config_installed() {
    local conf="$work/d1/usr/local/etc/kafka-redis-bridge/bridge.yaml"
    { echo '# yaml-language-server: $schema=/usr/local/share/kafka-redis-bridge/bridge.schema.json'
      tail -n +2 config/bridge.example.yaml; } >"$work/want.yaml"
    diff -u "$work/want.yaml" "$conf" && env -i PATH="$PATH" "$bin" check -c "$conf" >/dev/null
}

config_kept() {
    local conf="$work/d1/usr/local/etc/kafka-redis-bridge/bridge.yaml"
    echo '# edited by the operator' >>"$conf"
    cp "$conf" "$work/edited.yaml"
    install_into "$work/d1"
    cmp "$work/edited.yaml" "$conf"
    grep -qF "install: kept $conf" "$work/d1.log" || { echo "no \"kept\" line:"; cat "$work/d1.log"; return 1; }
    tree_is "$work/d1" "$fixtures/usr-local.txt"
}

usr_with_shim() {
    mkdir -p "$work/shim"
    printf 'not a real library\n' >"$work/shim/libk2r_shim.so.0"
    ln -s libk2r_shim.so.0 "$work/shim/libk2r_shim.so"
    printf '/* shim */\n' >"$work/shim/shim.h"
    install_into "$work/d2" PREFIX=/usr SHIM_LIB="$work/shim/libk2r_shim.so" SHIM_HEADER="$work/shim/shim.h" &&
        tree_is "$work/d2" "$fixtures/usr.txt" &&
        [ "$(readlink "$work/d2/usr/lib/libk2r_shim.so")" = libk2r_shim.so.0 ] &&
        cmp "$work/shim/shim.h" "$work/d2/usr/include/k2r/shim.h"
}

unit_lines() {
    local unit="$work/d2/usr/lib/systemd/system/kafka-redis-bridge.service"
    printf '%s\n' \
        'ExecStart=/usr/bin/kafka-redis-bridge run -c /etc/kafka-redis-bridge/bridge.yaml' \
        'ExecReload=/usr/bin/kafka-redis-bridge check -c /etc/kafka-redis-bridge/bridge.yaml' \
        'ExecReload=/bin/kill -HUP $MAINPID' >"$work/want.exec"
    grep '^Exec' "$unit" | diff -u "$work/want.exec" -
}

manpage() {
    local page="$work/d1/usr/local/share/man/man1/kafka-redis-bridge.1" word missing=0
    groff -man -ww -z "$page" 2>"$work/groff.err"
    if [ -s "$work/groff.err" ]; then
        cat "$work/groff.err"
        return 1
    fi
    [ "$(lexgrog "$page")" = "$page: \"kafka-redis-bridge - $("$bin" --help | head -n 1 | sed 's/^[^ ]* - //')\"" ] ||
        { lexgrog "$page"; return 1; }
    MANWIDTH=200 man -l "$page" 2>/dev/null | col -b >"$work/man.txt"
    for word in $("$bin" --help | grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' | tr -d ' ,') \
        $("$bin" --help | sed -n '/^commands:/,/^$/p' | awk 'NF > 1 { print $1 }'); do
        grep -qF -- "$word" "$work/man.txt" || { echo "not in the page: $word"; missing=1; }
    done
    [ "$missing" -eq 0 ] && grep -q '^EXIT STATUS' "$work/man.txt" && grep -q '^SIGNALS' "$work/man.txt"
}

systemd_verify() {
    local prefix="$work/prefix" unit exposure
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "systemd-analyze is not installed: the unit is NOT verified (scripts/deps.sh test installs Debian's systemd)"
        return 1
    fi
    make -s --no-print-directory install PREFIX="$prefix" >"$work/prefix.log" 2>&1 || { cat "$work/prefix.log"; return 1; }
    unit="$prefix/lib/systemd/system/kafka-redis-bridge.service"
    MANPATH="$prefix/share/man" systemd-analyze verify "$unit" || return 1
    exposure="$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    echo "exposure: ${exposure:-none}"
    [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'
}

echo "== make install"
check "DESTDIR, PREFIX=/usr/local, no shim: the tree of $fixtures/usr-local.txt" usr_local
check "the config: the example, its schema line at the installed schema; check accepts it" config_installed
check "a second make install keeps the edited config and the tree" config_kept
check "PREFIX=/usr with a shim: the tree of $fixtures/usr.txt, /etc, the symlink kept" usr_with_shim
check "the unit's Exec lines name /usr/bin and /etc" unit_lines
check "man page: no groff warning, whatis line, every option and command of --help" manpage
check "systemd-analyze verify, security --offline exposure <= 2.0" systemd_verify
checks_done install

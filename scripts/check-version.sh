#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-version.sh - one version, from one place (scripts/version.sh, which
# reads the VERSION file or a git tag). Part of `make test` (and `make
# dist-check`). Checks:
#   1. VERSION holds one semantic version (1.2.3 or 1.2.3-rc.1);
#   2. the chart's appVersion (helm/kafka-redis-bridge/Chart.yaml) is it;
#   3. when HEAD carries a tag, the tag is v$(cat VERSION);
#   4. scripts/version.sh in a throw-away clone: without tags VERSION plus the
#      commit (0.1.0+gHASH), with ".dirty" after an edit; on tag v9.8.7 just
#      9.8.7, one commit later 9.8.7-1-gHASH; in a `git archive` export (no
#      .git, as in a tarball or the container's build context) VERSION alone;
#   5. the Dockerfile takes the version only as the build argument VERSION
#      (no default of its own) and puts it in org.opencontainers.image.version;
#   6. with BIN: `BIN version` names the version scripts/version.sh prints.
#
# usage: scripts/check-version.sh [BIN]
# Prints one line per check, then "version: N passed, N failed"; exits 1
# when any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

. scripts/checks.sh

# usage: same WANT GOT
same() {
    [ "$1" = "$2" ] || {
        echo "expected: $1"
        echo "found:    $2"
        return 1
    }
}

version_file() {
    [ "$(wc -l <VERSION)" -eq 1 ] || { echo "VERSION has $(wc -l <VERSION) lines"; return 1; }
    grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?' VERSION ||
        { echo "VERSION holds \"$(cat VERSION)\""; return 1; }
}

app_version() {
    same "$(cat VERSION)" "$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' helm/kafka-redis-bridge/Chart.yaml)"
}

head_tag() {
    local tag
    if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        echo "not a git checkout: nothing to compare"
        return 0
    fi
    if ! tag="$(git describe --tags --exact-match HEAD 2>/dev/null)"; then
        echo "HEAD has no tag"
        return 0
    fi
    same "v$(cat VERSION)" "$tag"
}

# scripts/version.sh of this tree, run on a clone of HEAD with this tree's
# VERSION committed on top.
describe_clone() {
    local clone="$work/clone" base hash
    git clone -q --no-tags "$PWD" "$clone"
    cp VERSION "$clone/VERSION"
    commit() { git -C "$clone" -c user.name=check -c user.email=check@localhost commit -q "$@"; }
    git -C "$clone" add VERSION
    commit --allow-empty -m base
    base="$(cat VERSION)"
    hash="$(git -C "$clone" rev-parse --short HEAD)"
    same "$base+g$hash" "$(scripts/version.sh "$clone")" || return 1
    echo edited >>"$clone/README.md"
    same "$base+g$hash.dirty" "$(scripts/version.sh "$clone")" || return 1
    git -C "$clone" checkout -q -- README.md
    git -C "$clone" tag v9.8.7
    same 9.8.7 "$(scripts/version.sh "$clone")" || return 1
    commit --allow-empty -m after
    hash="$(git -C "$clone" rev-parse --short HEAD)"
    same "9.8.7-1-g$hash" "$(scripts/version.sh "$clone")" || return 1
    mkdir "$work/export"
    git -C "$clone" archive HEAD | tar -x -C "$work/export"
    same "$base" "$(scripts/version.sh "$work/export")"
}

dockerfile() {
    local args
    args="$(grep -E '^ARG VERSION' Dockerfile | sort -u)"
    same "ARG VERSION" "$args" || { echo "(the ARG VERSION lines must have no default)"; return 1; }
    grep -qF 'org.opencontainers.image.version="${VERSION}"' Dockerfile ||
        { echo 'no org.opencontainers.image.version="${VERSION}" label'; return 1; }
}

binary() {
    local got
    got="$("$bin" version)"
    same "kafka-redis-bridge $(scripts/version.sh) " "${got%%(*}"
}

echo "== version $(scripts/version.sh) (VERSION: $(cat VERSION))"
check "VERSION holds one semantic version" version_file
check "helm/kafka-redis-bridge/Chart.yaml appVersion = VERSION" app_version
check "a tag on HEAD is v\$(cat VERSION)" head_tag
check "scripts/version.sh: VERSION+gHASH without tags, .dirty, a tag, after a tag, no .git" describe_clone
check "Dockerfile: the version only from --build-arg VERSION, in the image label" dockerfile
if [ -n "$bin" ]; then
    check "$bin version names scripts/version.sh's version" binary
fi
checks_done version

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# version.sh - prints the version of a source tree: the one place that
# `kafka-redis-bridge version`, the k2r_build_info metric, the man page, the
# image's org.opencontainers.image.version label (make image) take it from.
#
#   a git checkout with a tag reachable from HEAD: `git describe --tags`
#       without a leading "v": 0.2.0 on the tag, 0.2.0-3-gabc1234 three
#       commits after it, with "-dirty" when tracked files were changed;
#   a git checkout without tags (a fresh clone of a branch): the VERSION
#       file's content plus the commit, as semver build metadata:
#       0.1.0+g22756ac, 0.1.0+g22756ac.dirty;
#   anything else (a source tarball, the container's build context): the
#       VERSION file's content.
#
# The VERSION file holds the release being made; a release tag is v$(cat
# VERSION) (scripts/check-version.sh checks both, and the chart's appVersion).
#
# usage: scripts/version.sh [DIR]     DIR: the tree (default: this script's)
set -euo pipefail
dir="${1:-$(dirname "$0")/..}"
cd "$dir"
base="$(tr -d ' \t\r\n' <VERSION)"
if [ -z "$base" ]; then
    echo "version.sh: $dir/VERSION is empty" >&2
    exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
    [ "$(git rev-parse --show-toplevel)" = "$(pwd -P)" ]; then
    if described="$(git describe --tags --dirty 2>/dev/null)"; then
        echo "${described#v}"
        exit 0
    fi
    if commit="$(git describe --always --dirty=.dirty 2>/dev/null)"; then
        echo "$base+g$commit"
        exit 0
    fi
fi
echo "$base"

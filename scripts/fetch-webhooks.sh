#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fetch-webhooks.sh - makes sure the community's example GitHub webhook
# payloads (npm package @octokit/webhooks-examples, pinned) are in the cache
# and prints on stdout only the absolute path of the package's JSON file that
# holds all of them (api.github.com/index.json); everything else goes to
# stderr. The package is installed once with npm into
#   ${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}/webhooks
# outside the work tree; a marker file makes later runs ask no registry.
#
# The file is a JSON array of webhook definitions,
#   [{"name": "push", "actions": [...], "description": "...",
#     "properties": {...}, "examples": [{...payload...}, ...]}, ...]
# (7.6.1: 58 definitions, 329 example payloads, all of them objects; 280 have
# a string repository.full_name).
#
# usage: scripts/fetch-webhooks.sh
#   K2R_CACHE_DIR=DIR   the cache root
set -euo pipefail

version="7.6.1"
pkg="@octokit/webhooks-examples"
cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
dest="$cache/webhooks"
file="$dest/node_modules/$pkg/api.github.com/index.json"
marker="$dest/complete-$version"

if [ -f "$marker" ] && [ -s "$file" ]; then
    echo "$file"
    exit 0
fi

command -v npm >/dev/null 2>&1 || {
    echo "fetch-webhooks.sh: npm is not on PATH (run scripts/deps.sh test)" >&2
    exit 1
}

mkdir -p "$dest"
exec 9>"$dest/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if [ ! -f "$marker" ] || [ ! -s "$file" ]; then
    echo "fetch-webhooks.sh: installing $pkg@$version with npm into $dest" >&2
    rm -f "$dest"/complete-*
    npm install --prefix "$dest" --no-audit --no-fund --silent --save-exact \
        "$pkg@$version" >&2
    # The file must be the array of definitions the tests walk.
    if ! node -e '
        const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        if (!Array.isArray(d) || d.length === 0 ||
            !d.every(e => e && typeof e.name === "string" && Array.isArray(e.examples)))
            process.exit(1);
    ' "$file" >&2; then
        echo "fetch-webhooks.sh: $file is missing or not an array of {name, examples[]}" >&2
        exit 1
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
fi
echo "$file"

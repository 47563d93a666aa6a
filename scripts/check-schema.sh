#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-schema.sh - the config's JSON Schema (config/bridge.schema.json, what
# `kafka-redis-bridge check --json-schema` prints; the unit tests compare the
# two) against the repository's configs, with Debian's python3-jsonschema
# (scripts/deps.sh's test group). Part of `make test` (and `make dist-check`).
#
#   1. `BIN check --json-schema` prints config/bridge.schema.json, and
#      config/bridge.example.yaml names the schema for yaml-language-server;
#   2. every config in the repository (config/, tests/fixtures/config/,
#      tests/fixtures/map/, tests/fixtures/schema/, tests/hostile/; among
#      them references.yaml, settings of each type as ${env:} references)
#      gets the same verdict from the
#      schema as from `BIN check`: valid for both, or refused by both, except
#      duplicate-keys.yaml, whose fault (a key written twice) YAML-to-JSON
#      readers hide by keeping the last, and oauthbearer-no-token.yaml, whose
#      fault is a combination of librdkafka properties (OAUTHBEARER without a
#      token source) that the loader knows and a schema of keys does not;
#   3. every ```yaml block of README.md and docs/*.md that is a part of a
#      config (top-level keys among the sections) is valid;
#   4. tests/fixtures/schema/invalid.yaml, a file of typical mistakes, is
#      refused with exactly the errors (path and keyword) of invalid.expected,
#      and `BIN check` refuses it too.
# The Helm chart's rendered configs are checked against the schema by
# scripts/chart-check.sh, which renders them.
#
# usage: scripts/check-schema.sh BIN
# Prints one line per check, then "schema: N passed, N failed"; exits 1 when
# any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: scripts/check-schema.sh BIN}"
schema=config/bridge.schema.json
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

. scripts/checks.sh

printed() {
    "$bin" check --json-schema | cmp - "$schema"
}

modeline() {
    local want='# yaml-language-server: $schema=bridge.schema.json'
    [ "$(head -n 1 config/bridge.example.yaml)" = "$want" ] || {
        echo "the first line of config/bridge.example.yaml is not: $want"
        return 1
    }
}

# usage: same_verdict FILE: `check` and the schema agree. check runs with no
# variables but PATH and those of the file's "# env: NAME=VALUE ..." line.
same_verdict() {
    local file="$1" loader=valid schema_says=valid vars
    read -r -a vars <<<"$(sed -n 's/^# env: //p' "$file")"
    env -i PATH="$PATH" "${vars[@]}" "$bin" check -c "$file" >"$work/loader.out" 2>&1 || loader=refused
    "$python" scripts/schema_validate.py "$schema" "$file" >"$work/schema.out" 2>&1 || schema_says=refused
    case "$file" in
    */duplicate-keys.yaml | */oauthbearer-no-token.yaml)
        [ "$loader" = refused ] && [ "$schema_says" = valid ] && return 0
        ;;
    *)
        [ "$loader" = "$schema_says" ] && return 0
        ;;
    esac
    echo "kafka-redis-bridge check: $loader; the schema: $schema_says"
    cat "$work/loader.out" "$work/schema.out"
    return 1
}

fragments() {
    "$python" scripts/schema_validate.py --fragments "$schema" README.md docs/*.md >"$work/frag.out" || {
        cat "$work/frag.out"
        return 1
    }
    cat "$work/frag.out"
    # README.md's reference and docs/rules.md's examples: not none.
    ! grep -qx '0 valid, 0 invalid' "$work/frag.out"
}

invalid() {
    local f=tests/fixtures/schema/invalid.yaml
    if env -i PATH="$PATH" "$bin" check -c "$f" >"$work/loader.out" 2>&1; then
        echo "kafka-redis-bridge check accepts $f"
        return 1
    fi
    "$python" scripts/schema_validate.py --brief "$schema" "$f" >"$work/brief.out" || true
    sed -n "s|^invalid $f: ||p" "$work/brief.out" >"$work/got"
    diff -u tests/fixtures/schema/invalid.expected "$work/got"
}

echo "== the config's JSON Schema ($schema)"
check "$bin check --json-schema prints $schema" printed
check "config/bridge.example.yaml names the schema (yaml-language-server)" modeline
for f in config/*.yaml tests/fixtures/config/*.yaml tests/fixtures/map/*.yaml tests/fixtures/schema/*.yaml \
    tests/hostile/bridge.yaml; do
    check "$f: the schema's verdict is check's" same_verdict "$f"
done
check "README.md and docs/*.md: every config block is valid" fragments
check "tests/fixtures/schema/invalid.yaml: refused with exactly invalid.expected's errors" invalid
checks_done schema

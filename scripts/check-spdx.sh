#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-spdx.sh - every file of the project's own code carries the line
# "SPDX-License-Identifier: Apache-2.0" within its first 5 lines (in whatever
# comment its language has). Part of `make test` (and `make dist-check`).
#
# Which files are code: C and C++ sources and headers, shell, Python, Go,
# JavaScript and TypeScript, HTML (the examples),
# any file that starts with "#!", the Makefile, the Dockerfile, the
# Helm chart's templates, Chart.yaml and values.yaml, the systemd unit's
# template under dist/, and tests/kafka/pom.xml. Data is not
# checked: test fixtures, fuzz corpora, value sets, JSON (which has no
# comments), Markdown, and the example config, which becomes the user's own
# file.
#
# The files are git's (tracked, and untracked ones not ignored, so that a new
# file fails before it is committed); outside a git checkout, find's.
#
# usage: scripts/check-spdx.sh
# Prints each file that lacks the line, then "spdx: N passed, N failed";
# exits 1 when any file lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."

want='SPDX-License-Identifier: Apache-2.0'

list_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard
    else
        find . -path ./build -prune -o -type f -print | sed 's|^\./||'
    fi
}

# True when the file is code by the rules above.
is_code() {
    case "$1" in
    tests/fixtures/* | fuzz/corpus/* | fuzz/regressions/* | tests/hostile/*.yaml) return 1 ;;
    *.c | *.h | *.cpp | *.hpp | *.sh | *.py | *.go | *.js | *.mjs | *.ts | *.html) return 0 ;;
    Makefile | Dockerfile | .ci/run | tests/kafka/pom.xml) return 0 ;;
    helm/*/templates/* | helm/*/Chart.yaml | helm/*/values.yaml) return 0 ;;
    dist/*.service | dist/*/*.service | dist/*/*.in) return 0 ;;
    esac
    [ -f "$1" ] && [ "$(head -c 2 "$1")" = '#!' ]
}

passed=0
failed=0
while IFS= read -r f; do
    [ -f "$f" ] || continue # listed by git, deleted in the work tree
    is_code "$f" || continue
    if head -n 5 "$f" | grep -qF "$want"; then
        passed=$((passed + 1))
    else
        echo "no \"$want\" in the first 5 lines: $f"
        failed=$((failed + 1))
    fi
done < <(list_files | sort)
echo "spdx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

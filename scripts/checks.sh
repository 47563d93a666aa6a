# SPDX-License-Identifier: Apache-2.0
# checks.sh - sourced by the check-*.sh scripts of `make test`: one named
# check at a time, its output shown only when it fails, and the tally.
# The sourcing script sets $work (a scratch directory it removes).
#
#   check "what" command...   runs the command; prints "ok    what" or
#                             "FAIL  what" and the command's output
#   checks_done NAME          prints "NAME: N passed, N failed"; fails when any did

passed=0
failed=0
check() {
    local what="$1"
    shift
    if "$@" >"$work/check.log" 2>&1; then
        printf 'ok    %s\n' "$what"
        passed=$((passed + 1))
    else
        printf 'FAIL  %s\n' "$what"
        sed 's/^/      /' "$work/check.log"
        failed=$((failed + 1))
    fi
}

checks_done() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh - runs one libFuzzer target for a while (`make fuzz`, `make fuzz-smoke`).
#
# usage: fuzz/run.sh NAME SECONDS [BUILD_DIR]      (NAME: map or config)
#
# The target first runs every seed in fuzz/corpus/NAME/ and every past crash
# in fuzz/regressions/NAME/ (so a fixed bug stays fixed), then mutates for
# SECONDS. New inputs go to BUILD_DIR/corpus/NAME/, a scratch directory that
# is never inside the repository's tracked files. A crash is saved under
# BUILD_DIR/crashes/ with the prefix NAME-; this script then prints the
# command that failed, the input in hex and how to reproduce it, and exits 1.
# The whole log is kept in BUILD_DIR/NAME.log.
set -euo pipefail

name="${1:?usage: fuzz/run.sh NAME SECONDS [BUILD_DIR]}"
seconds="${2:?usage: fuzz/run.sh NAME SECONDS [BUILD_DIR]}"
dir="${3:-build/fuzz}"
src="$(cd "$(dirname "$0")" && pwd)"

bin="$dir/fuzz_$name"
scratch="$dir/corpus/$name"
crashes="$dir/crashes"
log="$dir/$name.log"
[ -x "$bin" ] || {
    echo "fuzz/run.sh: $bin is not built (make fuzz builds it)" >&2
    exit 2
}
mkdir -p "$scratch" "$crashes"

corpora=("$scratch" "$src/corpus/$name")
[ -d "$src/regressions/$name" ] && corpora+=("$src/regressions/$name")
opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$crashes/$name-")
[ -f "$src/$name.dict" ] && opts+=(-dict="$src/$name.dict")

# Leaks are failures too; UBSan reports carry a stack and stop the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

cmd=("$bin" "${opts[@]}" "${corpora[@]}")
stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT
echo "fuzz: ${cmd[*]}" >&2
set +e
"${cmd[@]}" >"$log" 2>&1
rc=$?
set -e

# The figures worth reading: coverage at the end, speed, the corpus size.
grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" >&2 || true
if [ "$rc" -eq 0 ]; then
    echo "fuzz: $name: no crash in ${seconds}s (log: $log)" >&2
    exit 0
fi

# What failed, and the input that made it fail.
grep -E -A60 '^==[0-9]+==(ERROR|WARNING)|runtime error:|fuzz invariant violated|deadly signal|ERROR: libFuzzer' "$log" | head -120 >&2 || true
echo "fuzz: FAILED (exit $rc): ${cmd[*]}" >&2
found=0
while IFS= read -r f; do
    found=1
    echo "fuzz: input saved as $f ($(wc -c <"$f") bytes):" >&2
    od -A x -t x1z -v "$f" | head -40 >&2
    echo "fuzz: reproduce with: $bin $f" >&2
done < <(find "$crashes" -type f -name "$name-*" -newer "$stamp" 2>/dev/null)
if [ "$found" -eq 0 ]; then
    # A crash in the seeds or regressions: libFuzzer names the file it was running.
    grep -E 'Running: |Test unit written to' "$log" | tail -3 >&2 || true
fi
echo "fuzz: full log: $log" >&2
exit 1

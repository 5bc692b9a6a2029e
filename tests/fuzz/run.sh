#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...]: runs each fuzz target (default: all
# of them) for SECONDS on its committed corpus, tests/fuzz/corpus/<target>/.
# New inputs go to a scratch directory, never into the committed corpus;
# crashes, leaks, timeouts and out-of-memory inputs go to
# tests/fuzz/crashes/<target>/. Exits 1 if any target found one.
#
# Environment: FUZZ_BIN (the targets; default tests/fuzz/bin, else build/tests/fuzz/bin),
# FUZZ_JOBS (targets run at once; default: the number of CPUs),
# FUZZ_WORK (the scratch directory; default: a fresh one, removed at the end),
# FUZZ_ARGS (more libFuzzer options, e.g. "-only_ascii=1").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
	echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]" >&2
	exit 2
fi
secs=$1
shift
# Where the targets are: FUZZ_BIN, else tests/fuzz/bin (build.sh's default, or
# `make fuzz` in an in-tree build), else build/tests/fuzz/bin (scripts/test's build).
bin=${FUZZ_BIN:-}
if [ -z "$bin" ]; then
	bin=$here/bin
	for d in "$here/bin" "$here/../../build/tests/fuzz/bin"; do
		if [ -d "$d" ]; then bin=$(cd "$d" && pwd); break; fi
	done
fi
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
crashes=$here/crashes

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for t in "$here"/fuzz_*.c; do
		targets+=("$(basename "$t" .c)")
	done
fi
for t in "${targets[@]}"; do
	if [ ! -x "$bin/$t" ]; then
		echo "run.sh: $bin/$t is not built (make fuzz, or tests/fuzz/build.sh)" >&2
		exit 2
	fi
done

if [ -n "${FUZZ_WORK:-}" ]; then
	work=$FUZZ_WORK
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/midge-fuzz.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# run_one TARGET: fuzzes it; its exit status goes to $work/TARGET.rc.
run_one() {
	local t=$1 rc=0
	mkdir -p "$work/$t" "$crashes/$t"
	# shellcheck disable=SC2086
	"$bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/$t/" ${FUZZ_ARGS:-} \
		"$work/$t" "$here/corpus/$t" >"$work/$t.log" 2>&1 || rc=$?
	echo "$rc" >"$work/$t.rc"
}

echo "run.sh: ${#targets[@]} targets, ${secs} s each, $jobs at a time (scratch: $work)" >&2
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
wait

failed=()
for t in "${targets[@]}"; do
	rc=$(cat "$work/$t.rc" 2>/dev/null || echo 1)
	# The last status line: executions, coverage (cov: edges, ft: features), corpus.
	line=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -n 1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
	printf '%-18s %s  [%s execs, %s/s]\n' "$t" "${line:-no status}" "${execs:-?}" "${speed:-?}" >&2
	if [ "$rc" != 0 ]; then
		failed+=("$t")
		echo "=== $t failed (exit $rc); the end of its log:" >&2
		grep -v -E '^#[0-9]+|^\s+NEW_FUNC' "$work/$t.log" | tail -n 40 >&2
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "run.sh: failing targets: ${failed[*]}; inputs in $crashes/<target>/" >&2
	echo "run.sh: reproduce with $bin/<target> <input>" >&2
	exit 1
fi
echo "run.sh: no crashes" >&2

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# fault_injection.sh: the module's error paths under injected allocation
# failures (failslab, fail_page_alloc), on kernels that have them (the
# debug kernel). Only allocations made with spanalloc.ko on the stack fail
# (require-start/-end: the module's address range), and only in the
# ioctl-heavy tests (fork_isolation, spanalloc_test, and spanalloc_fuzz in
# its fault mode: random sequences of every call), which run with
# /proc/self/make-it-fail set: every SPAN_* ioctl, fork(), fault and
# mmap path of the module meets failures, the rest of the kernel none. Their
# own verdicts are not counted (allocations fail on purpose). What is judged:
# failures were injected, every run ended, and after each one every frame
# and heap is back (no leak on any error path). The kernel must report
# nothing: scripts/vm-run fails the run on any WARNING, BUG, KASAN or lockdep
# report, and kmemleak scans afterwards.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${SPANALLOC_TEST_BIN:-$here/../build/selftests}
dbg=/sys/kernel/debug
stats=/sys/class/misc/spanalloc/stats

echo "TAP version 13"
if [ ! -e $dbg/failslab/require-start ] || [ ! -d $dbg/fail_page_alloc ] ||
	[ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP no failslab/fail_page_alloc with a stack filter (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER) or not root"
	exit 0
fi
[ -e /dev/spanalloc ] || { echo "1..0 # SKIP /dev/spanalloc not present"; exit 0; }
# /proc/modules: name size refs deps state address
read -r size base < <(awk '$1 == "spanalloc" { print $2, $6 }' /proc/modules)
if [ -z "${base:-}" ] || [ $((base)) = 0 ]; then
	echo "1..0 # SKIP no address for spanalloc in /proc/modules"
	exit 0
fi

runs=(
	"fork_isolation"
	"spanalloc_test -f dev"
	"spanalloc_fuzz -p 2 -n 60 -f"
)
echo "1..$((2 * ${#runs[@]} * 2))"
n=0

# setup KIND: 5% of the task-filtered allocations fail, quietly.
setup() {
	local d=$dbg/$1
	# Kernel addresses are above 2^63: print them unsigned.
	printf '%u\n' $((base)) > $d/require-start
	printf '%u\n' $((base + size)) > $d/require-end
	echo 32 > $d/stacktrace-depth
	echo 10 > $d/probability
	echo 0 > $d/interval
	echo 100000 > $d/times
	echo 0 > $d/space
	echo 0 > $d/verbose
	echo Y > $d/task-filter
	echo N > $d/ignore-gfp-wait
	[ -e $d/ignore-gfp-highmem ] && echo N > $d/ignore-gfp-highmem
	[ -e $d/min-order ] && echo 0 > $d/min-order
	[ -e $d/cache-filter ] && echo N > $d/cache-filter
}

off() { echo 0 > $dbg/$1/probability; }

# The tests set module parameters (limits) and put them back at the end; a
# test stopped by an injected failure may not: put them all back here.
params=/sys/module/spanalloc/parameters
declare -A saved
for f in "$params"/*; do
	saved[$f]=$(cat "$f")
done
restore_params() {
	local f
	for f in "${!saved[@]}"; do
		echo "${saved[$f]}" > "$f" 2>/dev/null
	done
}

for kind in failslab fail_page_alloc; do
	setup $kind
	for r in "${runs[@]}"; do
		read -r prog args <<<"$r"
		# The fuzzer's short run would take every frame from a warm
		# pool (filled before, outside its task): with no pool, each of
		# its spans comes from the buddy allocator, in its task, and
		# every 5th such call fails (not 10% of them: a run of a few
		# dozen calls must meet one every time).
		if [ "$prog" = spanalloc_fuzz ] && [ $kind = fail_page_alloc ]; then
			echo 0 > $params/pool_max_frames
			echo 2 > /proc/sys/vm/drop_caches
			echo 100 > $dbg/$kind/probability
			echo 5 > $dbg/$kind/interval
		fi
		before=$(cat $dbg/$kind/times)
		# make-it-fail is inherited by the test's children (fork()).
		timeout -k 5 150 bash -c 'echo 1 > /proc/self/make-it-fail; exec "$0" "$@"' \
			"$bin/$prog" $args >/dev/null 2>&1
		status=$?
		injected=$((before - $(cat $dbg/$kind/times)))
		pkill -9 -f "$bin/$prog" 2>/dev/null
		sleep 1
		restore_params
		setup $kind
		n=$((n + 1))
		if [ $status -lt 124 ] && [ $injected -gt 0 ]; then
			echo "ok $n $kind: $prog ran to the end with $injected injected failures"
		else
			echo "not ok $n $kind: $prog status $status, $injected injected failures"
		fi
		frames=$(cat $stats/frames) heaps=$(cat $stats/heaps)
		n=$((n + 1))
		if [ "$frames" = 0 ] && [ "$heaps" = 0 ]; then
			echo "ok $n $kind: $prog left no frame and no heap"
		else
			echo "not ok $n $kind: $prog left frames=$frames heaps=$heaps"
		fi
	done
	off $kind
done

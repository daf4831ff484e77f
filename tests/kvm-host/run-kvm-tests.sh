#!/bin/sh
# run-kvm-tests: runs KVM test binaries inside the emulated host, one after the other, in one boot.
#
#   run-kvm-tests [NAME[:FILTER]...]   (default: every test listed in /etc/spindle/kvm-tests)
#
# FILTER is a gtest filter (e.g. kvm-lockbench-tests:*ring3): only those cases of that binary.
# Judges each by its exit status the way Meson does (0 pass, 77 skip, anything else fail) and
# prints one line per test that scripts/test counts:
#   kvm-host: PASS|FAIL|SKIP <name> (<seconds> s[, status N])
# Exits 1 when any test failed. KVM_TEST_TIMEOUT (seconds, default 300) bounds each test, so one
# hanging test fails alone instead of using up the whole emulated host's timeout.
limit="${KVM_TEST_TIMEOUT:-300}"
if [ $# -eq 0 ]; then
	# One name per line, none with spaces: word splitting is what we want.
	# shellcheck disable=SC2046
	set -- $(cat /etc/spindle/kvm-tests)
fi
[ $# -gt 0 ] || { echo "kvm-host: no KVM test binaries were packed"; exit 1; }

now() { cut -d' ' -f1 /proc/uptime; }
passed=0 failed=0 skipped=0
for spec in "$@"; do
	name=${spec%%:*}
	echo "kvm-host: RUN  $spec"
	start=$(now)
	if [ "$name" != "$spec" ]; then
		timeout -s KILL "$limit" "/bin/$name" "--gtest_filter=${spec#*:}" </dev/null 2>&1
	else
		timeout -s KILL "$limit" "/bin/$name" </dev/null 2>&1
	fi
	status=$?
	secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	case $status in
	0) passed=$((passed + 1)); echo "kvm-host: PASS $spec ($secs s)" ;;
	77) skipped=$((skipped + 1)); echo "kvm-host: SKIP $spec ($secs s)" ;;
	137) failed=$((failed + 1)); echo "kvm-host: FAIL $spec ($secs s, killed: over ${limit} s or crashed)" ;;
	*) failed=$((failed + 1)); echo "kvm-host: FAIL $spec ($secs s, status $status)" ;;
	esac
done
echo "kvm-host: inside the emulated host: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/bin/sh
# /init of the emulated KVM host (busybox sh; packed by make-initramfs.sh).
#
# Mounts the pseudo file systems, loads the KVM modules, runs the command in /etc/spindle/cmd,
# and reports back on the serial console with marker lines the host-side scripts/kvm-host parses:
#   @@SPINDLE-BEGIN-<nonce>@@         the command's output starts on the next line
#   @@SPINDLE-EXIT-<nonce> <status>@@ the command ended with <status>
#   @@SPINDLE-OUT-<nonce>@@ ... @@SPINDLE-OUT-END-<nonce>@@   base64 of a tar.gz of /out
#   @@SPINDLE-FAILED-<nonce> <why>@@  the host itself could not be set up
# The nonce comes from the kernel command line, so no output of the command can fake a marker.
# Variables set on the kernel command line (SPINDLE_HOST_NONCE, SPINDLE_PAUSE_EXITS,
# SPINDLE_HOST_OUT) arrive here as environment variables.
/bin/busybox --install -s /bin
export PATH=/bin
export HOME=/tmp TMPDIR=/tmp
# The console is a tty: without this gtest and others would colour their output with escapes.
export TERM=dumb
export SPINDLE_BIN=/bin/spindle
export SPINDLE_PAUSE_EXITS="${SPINDLE_PAUSE_EXITS:-1}"
export SPINDLE_EMULATED_HOST=1
nonce="${SPINDLE_HOST_NONCE:-none}"

say() { echo "kvm-host init: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
finish() {
	# Print the kernel's complaints (after the markers, so only the serial log shows them).
	dmesg | grep -i -E 'kvm|svm|warn|bug|oops|error' | tail -n 20
	sync
	poweroff -f
	sleep 10
}
failed() {
	echo "@@SPINDLE-FAILED-$nonce $*@@"
	finish
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing || failed "cannot mount tracefs"
# Not needed by KVM, but a real host has it: cpuset partitions for the scheduler's pools.
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || say "no cgroup2"
mkdir -p /tmp /out
say "shell ready at $(now) s"

while read -r module; do
	insmod "/lib/modules/spindle/$module" || failed "insmod $module failed"
done </lib/modules/spindle/modules.load
[ -c /dev/kvm ] || failed "no /dev/kvm after loading the modules (see dmesg)"
say "/dev/kvm ready at $(now) s; pause_filter_count=$(cat /sys/module/kvm_amd/parameters/pause_filter_count)"
# Per-thread kvm:kvm_exit counting needs perf; we are root, but say so plainly. Nothing else is
# tuned: SCHED_DEADLINE admission control (sched_rt_runtime_us) stays at its default unless the
# command itself changes it.
echo -1 >/proc/sys/kernel/perf_event_paranoid

echo "@@SPINDLE-BEGIN-$nonce@@"
cd /tmp || failed "no /tmp"
sh /etc/spindle/cmd </dev/null 2>&1
status=$?
echo "@@SPINDLE-EXIT-$nonce $status@@"
say "command ended with status $status at $(now) s"

if [ "${SPINDLE_HOST_OUT:-0}" = 1 ]; then
	echo "@@SPINDLE-OUT-$nonce@@"
	tar -C /out -czf - . | base64
	echo "@@SPINDLE-OUT-END-$nonce@@"
fi
finish

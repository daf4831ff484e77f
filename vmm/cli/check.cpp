#include "vmm/cli/check.h"

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "sched/actuator.h"
#include "sched/ple.h"
#include "vmm/kvm/kvm_system.h"

namespace spindle {

namespace {

int gProblems = 0;

void line(bool ok, const std::string &what, const std::string &detail)
{
	std::printf("  %-8s %-34s %s\n", ok ? "ok" : "missing", what.c_str(), detail.c_str());
}

void info(const std::string &what, const std::string &detail)
{
	std::printf("  %-8s %-34s %s\n", "info", what.c_str(), detail.c_str());
}

std::string readFirstLine(const std::string &path)
{
	std::ifstream file(path);
	std::string text;
	std::getline(file, text);
	return text;
}

bool cpuHasFlag(const std::string &flag)
{
	std::ifstream cpuinfo("/proc/cpuinfo");
	std::string text;
	while (std::getline(cpuinfo, text))
		if (text.rfind("flags", 0) == 0)
			return (text + " ").find(" " + flag + " ") != std::string::npos;
	return false;
}

// Tries a policy on a short-lived thread, so this process's own scheduling never changes.
std::string trySchedPolicy(uint32_t policy)
{
	std::string result;
	std::thread probe([&] {
		sched::SchedAttr attr;
		attr.policy = policy;
		if (policy == SCHED_DEADLINE) {
			attr.runtime = 100000;
			attr.deadline = attr.period = 10000000;
		} else {
			attr.priority = 1;
		}
		if (auto status = sched::setSchedAttr(0, attr); !status)
			result = std::strerror(status.error().code());
	});
	probe.join();
	return result;
}

} // namespace

int runHostCheck()
{
	std::printf("Spindle host check\n");
	bool kvmOk = false;
	auto kvm = KvmSystem::open();
	if (!kvm) {
		line(false, "/dev/kvm", kvm.error().message() +
						(access("/dev/kvm", F_OK) == 0
							 ? " -> add yourself to group kvm, or run as root"
							 : " -> enable virtualization in firmware and load kvm_intel/kvm_amd, "
							   "or use scripts/kvm-host (emulated KVM host)"));
		++gProblems;
	} else {
		kvmOk = true;
		line(true, "/dev/kvm", "read/write, API version 12");
		const int disable = kvm->checkExtension(KVM_CAP_X86_DISABLE_EXITS);
		line(disable & KVM_X86_DISABLE_EXITS_PAUSE, "KVM_CAP_X86_DISABLE_EXITS (PAUSE)",
		     disable & KVM_X86_DISABLE_EXITS_PAUSE ? "--ple off available" : "--ple off unavailable (needs Linux 4.18+)");
		line(kvm->checkExtension(KVM_CAP_BINARY_STATS_FD) > 0, "KVM_CAP_BINARY_STATS_FD",
		     kvm->checkExtension(KVM_CAP_BINARY_STATS_FD) > 0 ? "per-vCPU statistics available" : "needs Linux 5.14+");
		line(true, "KVM_CAP_NR_VCPUS / MAX_VCPUS",
		     std::to_string(kvm->checkExtension(KVM_CAP_NR_VCPUS)) + " recommended, " +
			     std::to_string(kvm->maxVcpus()) + " maximum");
		line(kvm->checkExtension(KVM_CAP_GET_TSC_KHZ) > 0, "KVM_CAP_GET_TSC_KHZ",
		     kvm->checkExtension(KVM_CAP_GET_TSC_KHZ) > 0 ? "guests get the TSC frequency" : "guests cannot time themselves");
	}

	// Pause-Loop Exiting: module parameters and whether PAUSE exits reach the kvm_exit tracepoint.
	bool pauseExits = false;
	if (access("/sys/module/kvm_intel/parameters/ple_gap", R_OK) == 0) {
		const std::string gap = readFirstLine("/sys/module/kvm_intel/parameters/ple_gap");
		const std::string window = readFirstLine("/sys/module/kvm_intel/parameters/ple_window");
		pauseExits = gap != "0" && !gap.empty();
		line(pauseExits, "PLE (kvm_intel)", "ple_gap " + gap + ", ple_window " + window +
							    (pauseExits ? "" : " -> load kvm_intel with ple_gap=128"));
	} else if (access("/sys/module/kvm_amd/parameters/pause_filter_count", R_OK) == 0) {
		const std::string count = readFirstLine("/sys/module/kvm_amd/parameters/pause_filter_count");
		const std::string thresh = readFirstLine("/sys/module/kvm_amd/parameters/pause_filter_thresh");
		const bool cpuFilter = cpuHasFlag("pausefilter");
		pauseExits = count != "0" && !count.empty() && cpuFilter;
		line(pauseExits, "PLE (kvm_amd)", "pause_filter_count " + count + ", pause_filter_thresh " + thresh +
							  (cpuFilter ? "" : "; CPU lacks pausefilter: PAUSE is not intercepted"));
	} else {
		line(false, "PLE module parameters", "kvm_intel/kvm_amd not loaded");
		++gProblems;
	}

	// The same tracepoint, filter and perf call the scheduler's PLE detector uses.
	bool observable = false;
	auto tracepoint = sched::kvmExitTracepointId();
	auto filter = sched::pauseExitFilter(sched::hostCpuVendor());
	if (!tracepoint) {
		line(false, "kvm:kvm_exit tracepoint", tracepoint.error().message());
	} else if (!filter) {
		line(false, "kvm:kvm_exit tracepoint", filter.error().message());
	} else if (auto counter = sched::PleCounter::open(static_cast<pid_t>(syscall(SYS_gettid)), *tracepoint, *filter);
		   !counter) {
		line(false, "kvm:kvm_exit tracepoint",
		     counter.error().message() + " -> run as root, grant CAP_PERFMON, or lower kernel.perf_event_paranoid");
	} else {
		line(true, "kvm:kvm_exit tracepoint", "can be opened per vCPU thread, filter '" + *filter + "'");
		observable = pauseExits;
	}
	line(observable, "PAUSE exits observable",
	     observable ? "yes: hardware spin detection (PLE) works"
			: "no: spin detection falls back to PV notifications and hints");

	const std::string deadline = trySchedPolicy(SCHED_DEADLINE);
	line(deadline.empty(), "SCHED_DEADLINE", deadline.empty() ? "settable (--boost-class deadline)" : deadline + " -> run as root or grant CAP_SYS_NICE");
	const std::string fifo = trySchedPolicy(SCHED_FIFO);
	line(fifo.empty(), "SCHED_FIFO", fifo.empty() ? "settable (boosts, the default class)" : fifo + " -> run as root or grant CAP_SYS_NICE");
	info("sched_rt_runtime_us", readFirstLine("/proc/sys/kernel/sched_rt_runtime_us") + " (real-time/deadline admission limit per 1 s)");

	const std::string controllers = readFirstLine("/sys/fs/cgroup/cgroup.controllers");
	const bool cpuset = (" " + controllers + " ").find(" cpuset ") != std::string::npos;
	line(cpuset, "cgroup v2 cpuset", cpuset ? "available (pool partitions)" : "unavailable: pools use affinity only");
	info("perf_event_paranoid", readFirstLine("/proc/sys/kernel/perf_event_paranoid"));
	info("host CPUs online", readFirstLine("/sys/devices/system/cpu/online"));

	std::printf("%s\n", kvmOk ? "KVM is usable." : "KVM is not usable here: see the lines marked missing.");
	return kvmOk ? 0 : 1;
}

} // namespace spindle

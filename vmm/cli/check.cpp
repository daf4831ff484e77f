#include "vmm/cli/check.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/format.h"
#include "common/json.h"
#include "guest-kernels/bundled.h"
#include "sched/actuator.h"
#include "sched/ple.h"
#include "vmm/kvm/backend.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/probe/host_probe.h"
#include "vmm/runtime/guest_mode.h"
#include "vmm/runtime/seccomp_filter.h"

namespace spindle {

namespace {

// One check: a verdict, what it found, and what to do when it is missing.
struct CheckLine {
	std::string key;   // for --json
	std::string what;  // for people
	std::string state; // "ok", "missing", "info"
	std::string detail;
	bool value = false; // the boolean answer, for --json
};

std::string readFirstLine(const std::string &path)
{
	std::ifstream file(path);
	std::string text;
	std::getline(file, text);
	return text;
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

std::string rate(double instructionsPerUs)
{
	return fixed(instructionsPerUs, instructionsPerUs < 10 ? 2 : 0) + " instructions/us";
}

class HostCheck
{
public:
	void run();
	void print() const;
	void printJson() const;
	bool kvmUsable() const { return kvm_.has_value(); }

private:
	void add(std::string key, std::string what, std::string state, std::string detail, bool value)
	{
		lines_.push_back({std::move(key), std::move(what), std::move(state), std::move(detail), value});
	}
	void checkKvm();
	void checkPauseExits();
	void checkGuestSpeed();
	void checkScheduling();

	std::optional<KvmSystem> kvm_;
	KvmBackend backend_ = KvmBackend::Unknown;
	std::vector<CheckLine> lines_;
	struct Measured {
		std::string key;
		double value;
	};
	std::vector<Measured> measured_; // numbers for --json
};

void HostCheck::checkKvm()
{
	auto kvm = KvmSystem::open();
	if (!kvm) {
		add("kvm", "/dev/kvm", "missing",
		    kvm.error().message() + (access("/dev/kvm", F_OK) == 0
						     ? " -> add yourself to group kvm, or run as root"
						     : " -> enable virtualization in firmware and load kvm_intel/kvm_amd, "
						       "or use scripts/kvm-host (emulated KVM host)"),
		    false);
		return;
	}
	kvm_.emplace(std::move(*kvm));
	backend_ = hostKvmBackend();
	std::string backendDetail;
	switch (backend_) {
	case KvmBackend::Vmx: backendDetail = "VMX (kvm_intel): hardware virtualization"; break;
	case KvmBackend::Svm: backendDetail = "SVM (kvm_amd): hardware virtualization"; break;
	case KvmBackend::Pvm: backendDetail = "PVM (kvm_pvm): software virtualization, guests run at CPL 3"; break;
	case KvmBackend::Unknown: backendDetail = "unknown (no kvm_intel, kvm_amd or kvm_pvm with its CPU feature)"; break;
	}
	add("kvm", "/dev/kvm", "ok", "read/write, API version 12, backend " + std::string(kvmBackendName(backend_)), true);
	add("kvm_backend", "KVM backend", "info", backendDetail, backend_ != KvmBackend::Unknown);
	const int disable = kvm_->checkExtension(KVM_CAP_X86_DISABLE_EXITS);
	const bool pauseOff = disable & KVM_X86_DISABLE_EXITS_PAUSE;
	add("disable_exits_pause", "KVM_CAP_X86_DISABLE_EXITS (PAUSE)", pauseOff ? "ok" : "missing",
	    pauseOff ? "--ple off available" : "--ple off unavailable (needs Linux 4.18+)", pauseOff);
	const bool stats = kvm_->checkExtension(KVM_CAP_BINARY_STATS_FD) > 0;
	add("binary_stats", "KVM_CAP_BINARY_STATS_FD", stats ? "ok" : "missing",
	    stats ? "per-vCPU statistics available" : "needs Linux 5.14+", stats);
	add("max_vcpus", "KVM_CAP_NR_VCPUS / MAX_VCPUS", "ok",
	    std::to_string(kvm_->checkExtension(KVM_CAP_NR_VCPUS)) + " recommended, " + std::to_string(kvm_->maxVcpus()) +
		    " maximum",
	    true);
	const bool tsc = kvm_->checkExtension(KVM_CAP_GET_TSC_KHZ) > 0;
	add("tsc_khz", "KVM_CAP_GET_TSC_KHZ", tsc ? "ok" : "missing",
	    tsc ? "guests get the TSC frequency" : "guests cannot time themselves", tsc);
}

// The same tracepoint, filter and perf counter the scheduler's PLE detector uses, on a guest
// that does nothing but PAUSE: measured, not inferred from module parameters.
void HostCheck::checkPauseExits()
{
	auto tracepoint = sched::kvmExitTracepointId();
	auto filter = sched::pauseExitFilter(sched::hostCpuVendor());
	std::string why;
	if (!tracepoint)
		why = tracepoint.error().message();
	else if (!filter)
		why = filter.error().message();
	else if (auto counter = sched::PleCounter::open(static_cast<pid_t>(syscall(SYS_gettid)), *tracepoint, *filter);
		 !counter)
		why = counter.error().message() + " -> run as root, grant CAP_PERFMON, or lower kernel.perf_event_paranoid";
	add("tracepoint", "kvm:kvm_exit tracepoint", why.empty() ? "ok" : "missing",
	    why.empty() ? "can be opened per vCPU thread, filter '" + *filter + "'" : why, why.empty());
	if (!why.empty() || !kvm_) {
		add("pause_exits", "PAUSE exits observable", "missing",
		    "cannot be measured without the tracepoint: spin detection falls back to PV notifications and hints",
		    false);
		return;
	}
	std::string detail;
	bool observable = false;
	for (GuestMode mode : {GuestMode::Ring0, GuestMode::Ring3}) {
		auto measured = measurePauseExits(*kvm_, mode, *tracepoint, *filter);
		const std::string name(guestModeName(mode));
		if (!measured) {
			detail += (detail.empty() ? "" : "; ") + name + ": " + measured.error().message();
			continue;
		}
		observable = observable || measured->exits > 0;
		detail += (detail.empty() ? "" : ", ") + std::to_string(measured->exits) + " exits for " +
			  std::to_string(measured->pauses) + " PAUSEs in " + name;
		measured_.push_back({"pauses_" + name, static_cast<double>(measured->pauses)});
		measured_.push_back({"pause_exits_" + name, static_cast<double>(measured->exits)});
	}
	add("pause_exits", "PAUSE exits observable", observable ? "ok" : "missing",
	    (observable ? "yes (measured: " + detail + "): hardware spin detection (PLE) works"
			: "no (measured: " + detail +
				  ") -> spin detection uses PV notifications and hints; PLE needs hardware VMX/SVM "
				  "or scripts/kvm-host"),
	    observable);
}

void HostCheck::checkGuestSpeed()
{
	if (!kvm_)
		return;
	bool ring0Emulated = false;
	for (GuestMode mode : {GuestMode::Ring0, GuestMode::Ring3}) {
		const std::string name(guestModeName(mode));
		auto speed = measureGuestSpeed(*kvm_, mode);
		if (!speed) {
			add("guest_native_" + name, "guest code in " + name, "missing", speed.error().message(), false);
			continue;
		}
		const double ipus = speed->instructionsPerUs();
		const bool native = ipus >= kNativeInstructionsPerUs;
		ring0Emulated = ring0Emulated || (mode == GuestMode::Ring0 && !native);
		add("guest_native_" + name, "guest code in " + name, native ? "ok" : "info",
		    std::string(native ? "native: " : "emulated: ") + rate(ipus) + " (measured)", native);
		measured_.push_back({"instructions_per_us_" + name, ipus});
	}
	// What `--guest-mode auto` does with the bundled guests (which declare both modes).
	const BundledGuest *hello = findBundledGuest("hello");
	uint32_t modes = SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3;
	if (hello)
		if (auto image = parseElf(hello->elf, SPINDLE_KERNEL_MIN_GPA, 64ull << 20))
			modes = image->guestModes;
	if (auto decision = chooseGuestMode(GuestModeChoice::Auto, backend_, modes, ring0Emulated))
		add("guest_mode_auto", "--guest-mode auto", "info",
		    "bundled guests boot in " + std::string(guestModeName(decision->mode)) + " (" + decision->reason + ")",
		    decision->mode == GuestMode::Ring3);
}

void HostCheck::checkScheduling()
{
	const std::string deadline = trySchedPolicy(SCHED_DEADLINE);
	add("sched_deadline", "SCHED_DEADLINE", deadline.empty() ? "ok" : "missing",
	    deadline.empty() ? "settable (--boost-class deadline)" : deadline + " -> run as root or grant CAP_SYS_NICE",
	    deadline.empty());
	const std::string fifo = trySchedPolicy(SCHED_FIFO);
	add("sched_fifo", "SCHED_FIFO", fifo.empty() ? "ok" : "missing",
	    fifo.empty() ? "settable (boosts, the default class)" : fifo + " -> run as root or grant CAP_SYS_NICE",
	    fifo.empty());
	add("sched_rt_runtime_us", "sched_rt_runtime_us", "info",
	    readFirstLine("/proc/sys/kernel/sched_rt_runtime_us") + " (real-time/deadline admission limit per 1 s)", true);
	const std::string controllers = readFirstLine("/sys/fs/cgroup/cgroup.controllers");
	const bool cpuset = (" " + controllers + " ").find(" cpuset ") != std::string::npos;
	add("cgroup_cpuset", "cgroup v2 cpuset", cpuset ? "ok" : "missing",
	    cpuset ? "available (pool partitions)" : "unavailable: pools use affinity only", cpuset);
	const Status seccomp = seccompAvailable();
	add("seccomp", "seccomp filters", seccomp ? "ok" : "missing",
	    seccomp ? "per-thread allow-lists can be installed (--seccomp on, the default)"
		    : seccomp.error().message() + " -> run with --seccomp off",
	    seccomp.ok());
	add("perf_event_paranoid", "perf_event_paranoid", "info", readFirstLine("/proc/sys/kernel/perf_event_paranoid"),
	    true);
	add("cpus_online", "host CPUs online", "info", readFirstLine("/sys/devices/system/cpu/online"), true);
}

void HostCheck::run()
{
	checkKvm();
	checkPauseExits();
	checkGuestSpeed();
	checkScheduling();
}

void HostCheck::print() const
{
	std::printf("Spindle host check\n");
	for (const CheckLine &line : lines_)
		std::printf("  %-8s %-34s %s\n", line.state.c_str(), line.what.c_str(), line.detail.c_str());
	std::printf("%s\n", kvmUsable() ? "KVM is usable." : "KVM is not usable here: see the lines marked missing.");
}

void HostCheck::printJson() const
{
	std::string out;
	JsonWriter json(out);
	json.beginObject().field("kvm_usable", kvmUsable()).field("backend", kvmBackendName(backend_));
	for (const CheckLine &line : lines_)
		json.key(line.key).beginObject().field("ok", line.value).field("state", line.state).field("detail", line.detail).endObject();
	for (const Measured &m : measured_)
		json.key(m.key).number(m.value, 2);
	json.endObject();
	std::puts(out.c_str());
}

} // namespace

int runHostCheck(const std::vector<std::string> &args)
{
	bool json = false;
	for (const std::string &arg : args) {
		if (arg == "--json") {
			json = true;
		} else if (arg == "-h" || arg == "--help") {
			std::printf("Usage: spindle check [--json]\n\n"
				    "Measures what this host offers Spindle: /dev/kvm and its backend (VMX, SVM, PVM),\n"
				    "whether PAUSE exits reach the kvm:kvm_exit tracepoint (a guest PAUSE loop, counted),\n"
				    "whether guest code runs natively in ring 0 and ring 3 (a calibration loop), and\n"
				    "the scheduling classes boosts need. One line each; --json for programs.\n"
				    "Exit status: 0 when KVM is usable, 1 otherwise.\n");
			return 0;
		} else {
			std::fprintf(stderr, "spindle: error: check: unknown option '%s' (expected --json)\n", arg.c_str());
			return 2;
		}
	}
	HostCheck check;
	check.run();
	if (json)
		check.printJson();
	else
		check.print();
	return check.kvmUsable() ? 0 : 1;
}

} // namespace spindle

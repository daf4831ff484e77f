// How fast the sampling spin detector (sched/sampling/vcpu_sampler.h, as the scheduler runs it)
// reports a spin wait, and how often it reports one where there is none.
//
//   build/bench/sampling/sample-detect [--rounds N] [--compute-ms MS] [--rate HZ] [--vcpu-cpu N]
//                                      [--sampler-cpu N]
//
// A one-vCPU ring-3 guest computes (a register loop of multiplies and adds: not a spin) for
// --compute-ms, writes once to an unmapped address (a KVM_EXIT_MMIO: the host takes the time
// the spin starts), then spins in a PAUSE loop. A sampler thread drains a VcpuSampler on the
// vCPU thread every 1 ms, as the scheduler's tick does, with the default history (printed; the
// scheduler's defaults) and --rate (default 1000 Hz, backing off while nothing spins, as in a run).
// Per round: detection latency = first report after the spin starts - the start (the round
// ends there, or after 2 s without one); false reports = reports during the compute phase.
// Prints the median and 90th percentile latency, the false reports per second of compute, and
// the samples per second. Not a test: the numbers are the host's. Run as root (perf sampling).

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/parse.h"
#include "sched/sampling/vcpu_sampler.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

namespace {

using namespace spindle;
using sched::sampling::SamplingConfig;
using sched::sampling::SamplingTarget;
using sched::sampling::VcpuSampler;

constexpr uint64_t kMemBytes = 4ull << 20;
constexpr uint64_t kCodeGpa = 0x200000;
constexpr uint64_t kMarkGpa = 0xa0000; // in the hole left out of the memory slots: the write exits
constexpr uint64_t kHoleEnd = 0x100000;
constexpr uint64_t kRoundLimitNs = 2'000'000'000;

// rdx = compute iterations (set per round); rcx counts.
const std::vector<uint8_t> kGuest = {
	0x31, 0xc9,                               // xor ecx, ecx
	0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, // mov rax, 1
	0x48, 0x6b, 0xc0, 0x03,                   // 1: imul rax, rax, 3
	0x48, 0x01, 0xc8,                         //    add rax, rcx
	0x48, 0xff, 0xc1,                         //    inc rcx
	0x48, 0x39, 0xd1,                         //    cmp rcx, rdx
	0x75, 0xf1,                               //    jne 1b
	0x48, 0xc7, 0xc7, 0x00, 0x00, 0x0a, 0x00, // mov rdi, kMarkGpa
	0x88, 0x07,                               // mov [rdi], al: the spin starts
	0x31, 0xc9,                               // xor ecx, ecx
	0xf3, 0x90,                               // 2: pause
	0x48, 0xff, 0xc1,                         //    inc rcx
	0xeb, 0xf9,                               //    jmp 2b
};

[[noreturn]] void die(const std::string &what)
{
	std::fprintf(stderr, "sample-detect: %s\n", what.c_str());
	std::exit(1);
}

template<typename T>
T check(Result<T> r, const char *what)
{
	if (!r)
		die(std::string(what) + ": " + r.error().message());
	return std::move(*r);
}

void check(const Status &s, const char *what)
{
	if (!s)
		die(std::string(what) + ": " + s.error().message());
}

void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		die("pinning to CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
}

struct Options {
	unsigned rounds = 20;
	unsigned computeMs = 200;
	unsigned rateHz = 1000;
	int vcpuCpu = 0, samplerCpu = 1;
};

Options parse(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; ++i) {
		const std::string flag = argv[i];
		if (i + 1 >= argc)
			die("usage: sample-detect [--rounds N] [--compute-ms MS] [--rate HZ] [--vcpu-cpu N] [--sampler-cpu N]");
		auto value = parseUnsigned(argv[++i], 0, 100'000);
		if (!value)
			die(flag + ": not a number in 0..100000: " + argv[i]);
		if (flag == "--rounds" && *value >= 1)
			o.rounds = static_cast<unsigned>(*value);
		else if (flag == "--compute-ms" && *value >= 10)
			o.computeMs = static_cast<unsigned>(*value);
		else if (flag == "--rate" && *value >= 10 && *value <= 10000)
			o.rateHz = static_cast<unsigned>(*value);
		else if (flag == "--vcpu-cpu")
			o.vcpuCpu = static_cast<int>(*value);
		else if (flag == "--sampler-cpu")
			o.samplerCpu = static_cast<int>(*value);
		else
			die("unknown flag or value out of range: " + flag + " " + argv[i]);
	}
	return o;
}

struct Round {
	bool detected = false;
	uint64_t latencyNs = 0;
	uint64_t falseReports = 0;
	uint64_t computeNs = 0;
	uint64_t samples = 0;
	uint64_t sampledNs = 0;
};

// Compute iterations per millisecond of this guest, measured once with no sampler.
uint64_t iterationsPerMs(KvmVcpu &vcpu)
{
	kvm_run *run = vcpu.run();
	constexpr uint64_t kProbe = 20'000'000;
	kvm_regs regs = spindle::entryRegs(kCodeGpa, kMemBytes, 0);
	regs.rdx = kProbe;
	check(vcpu.setRegs(regs), "set regs");
	const uint64_t t0 = monotonicNs();
	if (ioctl(vcpu.fd(), KVM_RUN, 0) != 0 || run->exit_reason != KVM_EXIT_MMIO)
		die("the guest did not reach its mark (exit " + std::to_string(run->exit_reason) + ")");
	const uint64_t ms = std::max<uint64_t>(1, (monotonicNs() - t0) / 1'000'000);
	run->immediate_exit = 1; // completes the pending MMIO write without running the guest
	(void)ioctl(vcpu.fd(), KVM_RUN, 0);
	run->immediate_exit = 0;
	return std::max<uint64_t>(1, kProbe / ms);
}

Round runRound(KvmVcpu &vcpu, const SamplingTarget &target, const Options &o, uint64_t iterations)
{
	kvm_run *run = vcpu.run();
	kvm_regs regs = spindle::entryRegs(kCodeGpa, kMemBytes, 0);
	regs.rdx = iterations;
	check(vcpu.setRegs(regs), "set regs");
	run->immediate_exit = 0;
	std::atomic<pid_t> tid{ 0 };
	std::atomic<uint64_t> startNs{ 0 }, spinNs{ 0 };
	std::atomic<bool> stop{ false };
	std::thread guest([&] {
		pin(o.vcpuCpu);
		tid = static_cast<pid_t>(syscall(SYS_gettid));
		while (startNs.load() == 0)
			std::this_thread::yield();
		while (!stop.load()) {
			int r = ioctl(vcpu.fd(), KVM_RUN, 0);
			if (r == 0 && run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == kMarkGpa) {
				spinNs = monotonicNs();
				continue;
			}
			if (r == 0)
				die("unexpected exit " + std::to_string(run->exit_reason));
			if (errno != EINTR && errno != EAGAIN)
				die(std::string("KVM_RUN: ") + std::strerror(errno));
			run->immediate_exit = 0;
		}
	});
	pin(o.samplerCpu);
	while (tid.load() == 0)
		std::this_thread::yield();
	SamplingConfig config;
	config.rateHz = o.rateHz;
	auto sampler = check(VcpuSampler::open(tid.load(), config), "perf sampler on the vCPU thread");
	Round round;
	const uint64_t t0 = monotonicNs();
	startNs = t0;
	while (monotonicNs() - t0 < kRoundLimitNs + o.computeMs * 1'000'000ull) {
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
		const auto drained = sampler->drain(target, 0);
		round.samples += drained.samples;
		if (!drained.report)
			continue;
		const uint64_t now = monotonicNs(), spin = spinNs.load();
		if (spin == 0 || now < spin) {
			round.falseReports++;
			continue;
		}
		round.detected = true;
		round.latencyNs = now - spin;
		break;
	}
	const uint64_t end = monotonicNs(), spin = spinNs.load();
	round.computeNs = (spin ? spin : end) - t0;
	round.sampledNs = end - t0;
	stop = true;
	run->immediate_exit = 1;
	pthread_kill(guest.native_handle(), kVcpuKickSignal);
	guest.join();
	return round;
}

double quantileMs(std::vector<uint64_t> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return static_cast<double>(v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]) / 1e6;
}

} // namespace

int main(int argc, char **argv)
{
	const Options o = parse(argc, argv);
	auto kvm = KvmSystem::open();
	if (!kvm) {
		std::fprintf(stderr, "sample-detect: skipped: %s\n", kvm.error().message().c_str());
		return 77;
	}
	installVcpuKickHandler();
	auto memory = check(GuestMemory::create(kMemBytes), "guest memory");
	check(writePageTables(memory, GuestMode::Ring3), "page tables");
	check(writeGdt(memory), "GDT");
	check(memory.write(kCodeGpa, kGuest), "guest code");
	auto vm = check(kvm->createVm(), "KVM_CREATE_VM");
	// RAM but the hole [kMarkGpa, kHoleEnd), as the VMM lays out its guests.
	check(vm.setMemorySlot(0, 0, memory.hostBase(), kMarkGpa), "memory slot below the hole");
	check(vm.setMemorySlot(1, kHoleEnd, memory.hostBase() + kHoleEnd, kMemBytes - kHoleEnd), "memory slot above the hole");
	auto vcpu = check(vm.createVcpu(0, check(kvm->vcpuMmapSize(), "mmap size")), "vCPU");
	check(vcpu.setCpuid(check(kvm->supportedCpuid(), "CPUID")), "set CPUID");
	const kvm_sregs sregs = longModeSregs(check(vcpu.sregs(), "sregs"), GuestMode::Ring3);
	check(vcpu.setSregs(sregs), "set sregs");
	SamplingTarget target;
	target.ram = { memory.bytes(), kMarkGpa, kHoleEnd };
	target.paging = { sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer };

	pin(o.vcpuCpu);
	const uint64_t perMs = iterationsPerMs(vcpu);
	std::vector<uint64_t> latencies;
	uint64_t falseReports = 0, computeNs = 0, samples = 0, sampledNs = 0;
	unsigned missed = 0;
	for (unsigned r = 0; r < o.rounds; ++r) {
		const Round round = runRound(vcpu, target, o, perMs * o.computeMs);
		if (round.detected)
			latencies.push_back(round.latencyNs);
		else
			missed++;
		falseReports += round.falseReports;
		computeNs += round.computeNs;
		samples += round.samples;
		sampledNs += round.sampledNs;
	}
	const sched::sampling::SampleHistoryConfig history;
	std::printf("sampling detector, --rate %u Hz (backing off while nothing spins), window %u, low %u, high %u; "
		    "vCPU on CPU %d, sampler on CPU %d\n",
		    o.rateHz, history.window, history.spinLow, history.spinHigh, o.vcpuCpu, o.samplerCpu);
	std::printf("detection latency (spin start -> first report), after %u ms of compute: median %.1f ms, p90 %.1f ms, "
		    "max %.1f ms (%zu of %u rounds detected, %u not within 2 s)\n",
		    o.computeMs, quantileMs(latencies, 0.5), quantileMs(latencies, 0.9), quantileMs(latencies, 1.0),
		    latencies.size(), o.rounds, missed);
	std::printf("false reports during compute: %lu in %.1f s (%.3f per second)\n",
		    static_cast<unsigned long>(falseReports), static_cast<double>(computeNs) / 1e9,
		    computeNs ? static_cast<double>(falseReports) * 1e9 / static_cast<double>(computeNs) : 0.0);
	std::printf("samples: %.0f per second of the round (compute and spin)\n",
		    sampledNs ? static_cast<double>(samples) * 1e9 / static_cast<double>(sampledNs) : 0.0);
	return missed == o.rounds ? 1 : 0;
}

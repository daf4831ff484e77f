// What it costs to take a running vCPU's RIP, per way of taking it, for the sampling spin
// detector (sched/sampling/).
//
//   build/bench/sampling/rip-sample-cost [--runs N] [--duration-ms MS] [--vcpu-cpu N]
//                                        [--sampler-cpu N] [--rates 100,1000,10000] [--fifo PRIO]
//                                        [--verbose]
//
// A one-vCPU ring-3 guest spins in a PAUSE loop (xor ecx; 1: pause; inc rcx; jmp 1b), so RCX
// counts its progress, on a thread pinned to --vcpu-cpu; a sampler thread on --sampler-cpu asks
// for samples at each rate. The ways:
//   A  get-regs        SIGUSR1 + kvm_run.immediate_exit (as the VMM kicks vCPUs); the vCPU
//                      thread reads KVM_GET_REGS itself and re-enters
//   A+ get-regs+sregs  the same plus KVM_GET_SREGS (CR3 and CPL for the page walk and the hints)
//   B  remote-regs     the same kick; the vCPU thread waits outside KVM_RUN (spinning: the
//                      cheapest hand-off) while the sampler issues KVM_GET_REGS on its fd
//   C  sync-regs       the kick, with kvm_run.kvm_valid_regs = KVM_SYNC_X86_REGS: KVM copies the
//                      registers into kvm_run on every exit, no ioctl at all
//   C+ sync-regs+sregs the same with KVM_SYNC_X86_SREGS too
//   E  timer           no sampler thread: a POSIX timer (CLOCK_MONOTONIC, SIGEV_THREAD_ID) on
//                      the vCPU thread itself delivers the signal; sync regs as in C+
//   F  cpu-timer       the same with the vCPU thread's CPU-time clock: fires only while the
//                      vCPU thread runs, which is exactly "sample running vCPUs"
//   G  perf cpu-clock  perf_rip_sampler.h: perf samples the vCPU thread's IP every period of
//                      its CPU time into a ring that the sampler drains every 1 ms; no exit to
//                      user space at all (where KVM attributes the interrupt to its guest)
// and D: KVM_GET_REGS from another thread while the vCPU is inside KVM_RUN, which waits on the
// vCPU mutex; how long it blocks (a watchdog kicks the vCPU every 10 ms to end the wait).
//
// Per sample: latency (the request to the RIP in hand), vCPU time out of KVM_RUN (return to
// re-entry), sampler CPU per sample (its thread CPU time per wake-up). Guest loss: guest
// iterations per second of vCPU-thread CPU time against an unsampled run of the same round
// (CPU time, not wall time, so other tenants of a shared machine do not count as loss; what the
// signal, the exit and the entry cost the vCPU thread is CPU time and does count). Medians over
// --runs rounds; each round runs every way at every rate with an unsampled run before each way.
// On a loaded shared machine, --fifo 1 runs the bench's own threads SCHED_FIFO so the numbers
// are the mechanisms' and not the neighbours' (sched/sampling/README.md has a run).

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "sched/sampling/perf_rip_sampler.h"
#include "common/clock.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

namespace {

using spindle::clockNs;
using spindle::monotonicNs;
using spindle::sched::sampling::PerfRipSample;
using spindle::sched::sampling::PerfRipSampler;

constexpr uint64_t kMemBytes = 4ull << 20;
constexpr uint64_t kCodeGpa = 0x200000;
const std::vector<uint8_t> kPauseLoop = {
	0x31, 0xc9,       // xor ecx, ecx
	0xf3, 0x90,       // 1: pause
	0x48, 0xff, 0xc1, // inc rcx
	0xeb, 0xf9,       // jmp 1b
};

enum class Way { None, GetRegs, GetRegsSregs, RemoteRegs, SyncRegs, SyncRegsSregs, Timer, CpuTimer, Perf };

struct WayInfo {
	Way way;
	const char *name;
	bool samplerThread;
};

const WayInfo kWays[] = {
	{Way::GetRegs, "A  get-regs", true},         {Way::GetRegsSregs, "A+ get-regs+sregs", true},
	{Way::RemoteRegs, "B  remote-regs", true},   {Way::SyncRegs, "C  sync-regs", true},
	{Way::SyncRegsSregs, "C+ sync-regs+sregs", true}, {Way::Timer, "E  timer+sync", false},
	{Way::CpuTimer, "F  cpu-timer+sync", false}, {Way::Perf, "G  perf cpu-clock", true},
};

[[noreturn]] void die(const std::string &what)
{
	std::fprintf(stderr, "rip-sample-cost: %s\n", what.c_str());
	std::exit(1);
}

template<typename T>
T check(spindle::Result<T> r, const char *what)
{
	if (!r)
		die(std::string(what) + ": " + r.error().message());
	return std::move(*r);
}

void check(const spindle::Status &s, const char *what)
{
	if (!s)
		die(std::string(what) + ": " + s.error().message());
}

// --fifo: the bench's vCPU and sampler threads run SCHED_FIFO at this priority (0: not), so
// other tenants of a shared machine cannot preempt them and the costs are the mechanism's own.
int g_fifoPriority = 0;

void pin(int cpu)
{
	if (g_fifoPriority > 0) {
		sched_param param{};
		param.sched_priority = g_fifoPriority;
		if (sched_setscheduler(0, SCHED_FIFO, &param) != 0)
			die("SCHED_FIFO: " + std::string(std::strerror(errno)));
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		die("cannot pin to CPU " + std::to_string(cpu));
}

// The one-vCPU guest, as vmm/probe/host_probe.cpp builds its probes, in ring 3.
struct SpinVm {
	spindle::GuestMemory memory;
	spindle::KvmVm vm;
	spindle::KvmVcpu vcpu;
};

SpinVm makeVm(const spindle::KvmSystem &kvm)
{
	using spindle::GuestMode;
	auto memory = check(spindle::GuestMemory::create(kMemBytes), "guest memory");
	check(spindle::writePageTables(memory, GuestMode::Ring3), "page tables");
	check(spindle::writeGdt(memory), "GDT");
	check(memory.write(kCodeGpa, kPauseLoop), "guest code");
	auto vm = check(kvm.createVm(), "KVM_CREATE_VM");
	check(vm.setMemorySlot(0, 0, memory), "memory slot");
	auto vcpu = check(vm.createVcpu(0, check(kvm.vcpuMmapSize(), "mmap size")), "vCPU");
	check(vcpu.setCpuid(check(kvm.supportedCpuid(), "CPUID")), "set CPUID");
	check(vcpu.setSregs(spindle::longModeSregs(check(vcpu.sregs(), "sregs"), GuestMode::Ring3)), "set sregs");
	check(vcpu.setRegs(spindle::entryRegs(kCodeGpa, kMemBytes, 0)), "set regs");
	return SpinVm{std::move(memory), std::move(vm), std::move(vcpu)};
}

struct Run {
	double iterationsPerCpuSecond = 0;
	uint64_t samples = 0;
	double seconds = 0;    // wall time
	double cpuSeconds = 0; // the vCPU thread's CPU time
	std::vector<uint64_t> latencyNs, outNs, samplerCpuNs;
	uint64_t guestSamples = 0; // G: samples perf attributed to the guest
	bool guestRipSeen = false; // G: ... and one of them at the PAUSE loop's RIP
};

// One run of durationNs: the vCPU thread, and for the sampler ways a sampler thread at rate/s.
Run runOnce(SpinVm &s, Way way, unsigned rate, uint64_t durationNs, int vcpuCpu, int samplerCpu)
{
	kvm_run *run = s.vcpu.run();
	const size_t capacity = rate ? static_cast<size_t>(rate * (durationNs / 1e9) * 2 + 64) : 0;
	std::vector<uint64_t> requestNs(capacity), doneNs(capacity);
	Run result;
	result.outNs.reserve(capacity);
	std::atomic<uint64_t> requested{0}, served{0}, out{0}, done{0};
	std::atomic<bool> stop{false}, ready{false}, go{false};
	std::atomic<pid_t> vcpuTid{0};
	uint64_t rcxStart = check(s.vcpu.regs(), "regs").rcx, cpuStart = 0, cpuEnd = 0, wallStart = 0, wallEnd = 0;
	run->kvm_valid_regs = way == Way::SyncRegs ? KVM_SYNC_X86_REGS
			      : way == Way::SyncRegsSregs || way == Way::Timer || way == Way::CpuTimer
				      ? KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS
				      : 0;
	run->immediate_exit = 0;
	const long periodNs = rate ? static_cast<long>(1'000'000'000ull / rate) : 0;

	std::thread vcpu([&] {
		pin(vcpuCpu);
		vcpuTid = static_cast<pid_t>(syscall(SYS_gettid));
		timer_t timer{};
		bool timed = way == Way::Timer || way == Way::CpuTimer;
		if (timed) {
			sigevent ev{};
			ev.sigev_notify = SIGEV_THREAD_ID;
			ev.sigev_signo = spindle::kVcpuKickSignal;
			ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
			if (timer_create(way == Way::Timer ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ev, &timer) != 0)
				die("timer_create: " + std::string(std::strerror(errno)));
			itimerspec spec{{0, periodNs}, {0, periodNs}};
			timer_settime(timer, 0, &spec, nullptr);
		}
		ready = true;
		while (!go.load()) // until the sampler (or perf) is set up, so the run measures only sampling
			std::this_thread::yield();
		wallStart = monotonicNs();
		cpuStart = clockNs(CLOCK_THREAD_CPUTIME_ID);
		while (!stop.load(std::memory_order_relaxed)) {
			int r = ioctl(s.vcpu.fd(), KVM_RUN, 0);
			uint64_t leftNs = monotonicNs();
			if (r == 0)
				die("the spinning guest exited with reason " + std::to_string(run->exit_reason));
			if (errno != EINTR && errno != EAGAIN)
				die("KVM_RUN: " + std::string(std::strerror(errno)));
			run->immediate_exit = 0;
			uint64_t want = timed ? served.load() + 1 : requested.load(std::memory_order_acquire);
			uint64_t have = served.load(std::memory_order_relaxed);
			if (want <= have || have >= capacity)
				continue; // a late signal for a request already served, or the record is full
			volatile uint64_t rip = 0;
			if (way == Way::GetRegs || way == Way::GetRegsSregs) {
				kvm_regs regs;
				ioctl(s.vcpu.fd(), KVM_GET_REGS, &regs);
				rip = regs.rip;
				if (way == Way::GetRegsSregs) {
					kvm_sregs sregs;
					ioctl(s.vcpu.fd(), KVM_GET_SREGS, &sregs);
					rip = rip + (sregs.cs.selector & 3);
				}
			} else if (way == Way::RemoteRegs) {
				out.store(want, std::memory_order_release);
				uint64_t limit = leftNs + 100'000'000;
				while (done.load(std::memory_order_acquire) < want && monotonicNs() < limit && !stop.load())
					;
			} else {
				rip = run->s.regs.regs.rip + (run->s.regs.sregs.cs.selector & 3);
			}
			(void)rip;
			uint64_t now = monotonicNs();
			if (way != Way::RemoteRegs)
				doneNs[have] = now;
			if (timed)
				requestNs[have] = now; // no request to measure from
			result.outNs.push_back(now - leftNs);
			served.store(want, std::memory_order_release);
		}
		cpuEnd = clockNs(CLOCK_THREAD_CPUTIME_ID);
		wallEnd = monotonicNs();
		if (timed)
			timer_delete(timer);
	});

	while (!ready)
		std::this_thread::yield();
	std::thread sampler;
	std::optional<PerfRipSampler> perf;
	uint64_t perfSamples = 0, perfGuest = 0;
	bool perfRipSeen = false;
	// Per sample: the delay until the drain saw it, whether it was the guest's, at the loop's RIP.
	auto onSample = [&](const PerfRipSample &sample) {
		uint64_t now = monotonicNs();
		result.latencyNs.push_back(now > sample.timeNs ? now - sample.timeNs : 0);
		perfSamples++;
		perfGuest += sample.guest;
		perfRipSeen = perfRipSeen || (sample.guest && (sample.ip == kCodeGpa + 2 || sample.ip == kCodeGpa + 4));
	};
	if (rate && way == Way::Perf) {
		perf.emplace(check(PerfRipSampler::open(vcpuTid.load(), 1'000'000'000ull / rate), "perf cpu-clock"));
		sampler = std::thread([&] {
			// Drains at the scheduler's tick (1 ms), as the scheduler thread would.
			pin(samplerCpu);
			while (!stop.load()) {
				timespec tick{0, 1'000'000};
				nanosleep(&tick, nullptr);
				uint64_t cpuBefore = clockNs(CLOCK_THREAD_CPUTIME_ID);
				uint64_t n = perf->drain(onSample);
				if (n > 0)
					result.samplerCpuNs.push_back((clockNs(CLOCK_THREAD_CPUTIME_ID) - cpuBefore) / n);
			}
		});
	} else if (rate && (way != Way::Timer && way != Way::CpuTimer)) {
		sampler = std::thread([&] {
			pin(samplerCpu);
			uint64_t next = monotonicNs();
			uint64_t cpuBefore = clockNs(CLOCK_THREAD_CPUTIME_ID);
			for (uint64_t i = 0; i < capacity && !stop.load(); i++) {
				next += static_cast<uint64_t>(periodNs);
				timespec at{static_cast<time_t>(next / 1'000'000'000), static_cast<long>(next % 1'000'000'000)};
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
				if (stop.load())
					break;
				requestNs[i] = monotonicNs();
				requested.store(i + 1, std::memory_order_release);
				__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_RELEASE);
				pthread_kill(vcpu.native_handle(), spindle::kVcpuKickSignal);
				if (way == Way::RemoteRegs) {
					// Only once the vCPU thread says it is out of KVM_RUN: otherwise the ioctl
					// would wait on the vCPU mutex for as long as the guest runs (D).
					uint64_t limit = monotonicNs() + 100'000'000, o = 0;
					while ((o = out.load(std::memory_order_acquire)) < i + 1 && monotonicNs() < limit &&
					       !stop.load())
						;
					if (o >= i + 1) {
						kvm_regs regs;
						ioctl(s.vcpu.fd(), KVM_GET_REGS, &regs);
						doneNs[i] = monotonicNs();
						done.store(o, std::memory_order_release);
					}
				}
				uint64_t cpuNow = clockNs(CLOCK_THREAD_CPUTIME_ID);
				result.samplerCpuNs.push_back(cpuNow - cpuBefore);
				cpuBefore = cpuNow;
			}
		});
	}
	go = true;
	timespec pause{static_cast<time_t>(durationNs / 1'000'000'000), static_cast<long>(durationNs % 1'000'000'000)};
	nanosleep(&pause, nullptr);
	stop = true;
	// Kick before and after the sampler ends, so neither thread can be left waiting on the other.
	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu.native_handle(), spindle::kVcpuKickSignal);
	if (sampler.joinable())
		sampler.join();
	__atomic_store_n(&run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu.native_handle(), spindle::kVcpuKickSignal);
	vcpu.join();
	run->immediate_exit = 0;
	run->kvm_valid_regs = 0;

	uint64_t iterations = check(s.vcpu.regs(), "regs").rcx - rcxStart;
	result.iterationsPerCpuSecond = static_cast<double>(iterations) / (static_cast<double>(cpuEnd - cpuStart) / 1e9);
	result.seconds = static_cast<double>(wallEnd - wallStart) / 1e9;
	result.cpuSeconds = static_cast<double>(cpuEnd - cpuStart) / 1e9;
	result.samples = served.load();
	if (perf) {
		perf->drain(onSample);
		result.samples = perfSamples;
		result.guestSamples = perfGuest;
		result.guestRipSeen = perfRipSeen;
		return result;
	}
	for (uint64_t i = 0; i < result.samples && i < capacity; i++)
		if (doneNs[i] >= requestNs[i] && requestNs[i] != 0)
			result.latencyNs.push_back(doneNs[i] - requestNs[i]);
	return result;
}

double quantile(std::vector<uint64_t> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]);
}

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

// D: KVM_GET_REGS from this thread while the vCPU thread is in KVM_RUN. The vCPU is kicked
// every 10 ms until the ioctl returns.
struct Blocked {
	uint64_t blockedNs = 0;
	unsigned kicks = 0;
	uint64_t afterLastKickNs = 0; // from the last kick to the ioctl's return
};

Blocked blockedGetRegs(SpinVm &s, int vcpuCpu, int samplerCpu)
{
	std::atomic<bool> stop{false}, inside{false};
	std::thread vcpu([&] {
		pin(vcpuCpu);
		inside = true;
		while (!stop.load()) {
			ioctl(s.vcpu.fd(), KVM_RUN, 0);
			s.vcpu.run()->immediate_exit = 0;
		}
	});
	while (!inside)
		std::this_thread::yield();
	std::this_thread::sleep_for(std::chrono::milliseconds(20)); // surely inside KVM_RUN by now
	std::atomic<bool> returned{false};
	std::atomic<unsigned> kicks{0};
	std::atomic<uint64_t> lastKickNs{0};
	std::thread watchdog([&] {
		pin(samplerCpu);
		while (!returned.load()) {
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
			if (returned.load())
				break;
			lastKickNs = monotonicNs();
			kicks++;
			pthread_kill(vcpu.native_handle(), spindle::kVcpuKickSignal);
		}
	});
	pin(samplerCpu);
	uint64_t t0 = monotonicNs();
	kvm_regs regs;
	ioctl(s.vcpu.fd(), KVM_GET_REGS, &regs);
	uint64_t t1 = monotonicNs();
	returned = true;
	watchdog.join();
	stop = true;
	__atomic_store_n(&s.vcpu.run()->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu.native_handle(), spindle::kVcpuKickSignal);
	vcpu.join();
	s.vcpu.run()->immediate_exit = 0;
	return {t1 - t0, kicks.load(), lastKickNs.load() ? t1 - lastKickNs.load() : 0};
}

struct Options {
	int runs = 5;
	uint64_t durationMs = 300;
	int vcpuCpu = 1;
	int samplerCpu = 0;
	std::vector<unsigned> rates = {100, 1000, 10000};
	bool verbose = false;
};

Options parse(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; i++) {
		std::string arg = argv[i];
		if (arg == "--verbose") {
			o.verbose = true;
			continue;
		}
		if (arg == "-h" || arg == "--help" || i + 1 >= argc) {
			std::fprintf(stderr, "usage: rip-sample-cost [--runs N] [--duration-ms MS] [--vcpu-cpu N] "
					     "[--sampler-cpu N] [--rates 100,1000,10000] [--fifo PRIO] [--verbose]\n");
			std::exit(arg == "-h" || arg == "--help" ? 0 : 2);
		}
		std::string value = argv[++i];
		if (arg == "--runs")
			o.runs = std::max(1, std::atoi(value.c_str()));
		else if (arg == "--duration-ms")
			o.durationMs = std::max(10, std::atoi(value.c_str()));
		else if (arg == "--vcpu-cpu")
			o.vcpuCpu = std::atoi(value.c_str());
		else if (arg == "--fifo")
			g_fifoPriority = std::atoi(value.c_str());
		else if (arg == "--sampler-cpu")
			o.samplerCpu = std::atoi(value.c_str());
		else if (arg == "--rates") {
			o.rates.clear();
			for (size_t at = 0; at < value.size();) {
				size_t comma = value.find(',', at);
				o.rates.push_back(static_cast<unsigned>(std::atoi(value.substr(at, comma - at).c_str())));
				at = comma == std::string::npos ? value.size() : comma + 1;
			}
		} else
			die("unknown option " + arg);
	}
	return o;
}

} // namespace

int main(int argc, char **argv)
{
	Options o = parse(argc, argv);
	auto kvm = spindle::KvmSystem::open();
	if (!kvm) {
		std::fprintf(stderr, "rip-sample-cost: skipped: %s\n", kvm.error().message().c_str());
		return 77;
	}
	spindle::installVcpuKickHandler();
	SpinVm s = makeVm(*kvm);
	std::printf("KVM_CAP_SYNC_REGS: %#x (REGS %#x, SREGS %#x, EVENTS %#x)\n", kvm->checkExtension(KVM_CAP_SYNC_REGS),
		    static_cast<unsigned>(KVM_SYNC_X86_REGS), static_cast<unsigned>(KVM_SYNC_X86_SREGS),
		    static_cast<unsigned>(KVM_SYNC_X86_EVENTS));
	const uint64_t durationNs = o.durationMs * 1'000'000;
	runOnce(s, Way::None, 0, durationNs / 3, o.vcpuCpu, o.samplerCpu); // warm-up

	const size_t nWays = std::size(kWays), nRates = o.rates.size();
	// Per way and rate, over rounds: raw loss, samples per second of vCPU-thread CPU time, the
	// thread's CPU share. Per-sample distributions come from the middle rate's runs.
	struct Cell {
		std::vector<double> loss, perCpuSecond, share;
	};
	std::vector<std::vector<Cell>> cells(nWays, std::vector<Cell>(nRates));
	std::vector<std::vector<uint64_t>> latency(nWays), out(nWays), samplerCpu(nWays);
	size_t statsRate = nRates / 2;
	std::vector<double> baselines;
	uint64_t perfSamples = 0, perfGuest = 0;
	bool perfRipSeen = false;
	for (int round = 0; round < o.runs; round++) {
		for (size_t w = 0; w < nWays; w++) {
			double base = runOnce(s, Way::None, 0, durationNs, o.vcpuCpu, o.samplerCpu).iterationsPerCpuSecond;
			baselines.push_back(base);
			for (size_t r = 0; r < nRates; r++) {
				Run run = runOnce(s, kWays[w].way, o.rates[r], durationNs, o.vcpuCpu, o.samplerCpu);
				Cell &c = cells[w][r];
				c.loss.push_back(1.0 - run.iterationsPerCpuSecond / base);
				c.perCpuSecond.push_back(static_cast<double>(run.samples) / run.cpuSeconds);
				c.share.push_back(run.cpuSeconds / run.seconds);
				if (kWays[w].way == Way::Perf) {
					perfSamples += run.samples;
					perfGuest += run.guestSamples;
					perfRipSeen = perfRipSeen || run.guestRipSeen;
				}
				if (o.verbose)
					std::fprintf(stderr, "round %d %-18s %5u/s: %6llu samples (%.0f per vCPU CPU s, CPU share %.2f), "
							     "loss %6.2f%%, latency p50 %.1f us max %.1f us\n",
						     round, kWays[w].name, o.rates[r], static_cast<unsigned long long>(run.samples),
						     c.perCpuSecond.back(), c.share.back(), 100 * c.loss.back(),
						     quantile(run.latencyNs, 0.5) / 1e3, quantile(run.latencyNs, 1.0) / 1e3);
				if (r == statsRate) {
					latency[w].insert(latency[w].end(), run.latencyNs.begin(), run.latencyNs.end());
					out[w].insert(out[w].end(), run.outNs.begin(), run.outNs.end());
					samplerCpu[w].insert(samplerCpu[w].end(), run.samplerCpuNs.begin(), run.samplerCpuNs.end());
				}
			}
		}
	}
	// Guest time one sample costs, from a run: its loss over its samples per vCPU CPU second.
	auto lostUs = [](const Cell &c) {
		std::vector<double> v;
		for (size_t i = 0; i < c.loss.size(); i++)
			if (c.perCpuSecond[i] > 0)
				v.push_back(c.loss[i] / c.perCpuSecond[i] * 1e6);
		return median(v);
	};

	std::printf("guest: %.0f PAUSE-loop iterations per vCPU-thread CPU second unsampled (median of %zu)\n",
		    median(baselines), baselines.size());
	std::printf("%d rounds of %llu ms, medians. Per-sample columns from the %u/s runs. \"lost\" = guest time one "
		    "sample costs (loss / samples per vCPU CPU second) at the highest rate; \"loss at N/s\" = that "
		    "rate's measured loss scaled to N samples per second of a vCPU that runs all the time.\n\n",
		    o.runs, static_cast<unsigned long long>(o.durationMs), o.rates[statsRate]);
	std::printf("| way | latency med / p99 us | vCPU out of KVM_RUN med / p99 us | sampler CPU med / p99 us | lost us |");
	for (unsigned rate : o.rates)
		std::printf(" loss at %u/s |", rate);
	std::printf("\n|---|---|---|---|---|");
	for (size_t r = 0; r < nRates; r++)
		std::printf("---|");
	std::printf("\n");
	for (size_t w = 0; w < nWays; w++) {
		std::printf("| %s | %.1f / %.1f | %.1f / %.1f | ", kWays[w].name, quantile(latency[w], 0.5) / 1e3,
			    quantile(latency[w], 0.99) / 1e3, quantile(out[w], 0.5) / 1e3, quantile(out[w], 0.99) / 1e3);
		if (kWays[w].samplerThread)
			std::printf("%.1f / %.1f |", quantile(samplerCpu[w], 0.5) / 1e3, quantile(samplerCpu[w], 0.99) / 1e3);
		else
			std::printf("none |");
		std::printf(" %.1f |", lostUs(cells[w][nRates - 1]));
		for (size_t r = 0; r < nRates; r++)
			std::printf(" %.2f%% |", 100 * lostUs(cells[w][r]) * 1e-6 * o.rates[r]);
		std::printf("\n");
	}
	std::printf("\nmeasured: raw loss / samples per vCPU CPU second / vCPU CPU share\n\n| way |");
	for (unsigned rate : o.rates)
		std::printf(" %u/s requested |", rate);
	std::printf("\n|---|");
	for (size_t r = 0; r < nRates; r++)
		std::printf("---|");
	std::printf("\n");
	for (size_t w = 0; w < nWays; w++) {
		std::printf("| %s |", kWays[w].name);
		for (size_t r = 0; r < nRates; r++)
			std::printf(" %.2f%% / %.0f / %.2f |", 100 * median(cells[w][r].loss), median(cells[w][r].perCpuSecond),
				    median(cells[w][r].share));
		std::printf("\n");
	}

	std::printf("\nG: %llu of %llu perf samples were the guest's (guest user/kernel mode), the PAUSE loop's RIP %s; "
		    "latency there is sample to drain at a 1 ms tick\n",
		    static_cast<unsigned long long>(perfGuest), static_cast<unsigned long long>(perfSamples),
		    perfRipSeen ? "among them" : "never seen");
	std::printf("\nD  KVM_GET_REGS from another thread while the vCPU is in KVM_RUN (watchdog kicks every 10 ms):\n");
	for (int i = 0; i < std::min(o.runs, 5); i++) {
		Blocked b = blockedGetRegs(s, o.vcpuCpu, o.samplerCpu);
		std::printf("   blocked %.2f ms, returned %.1f us after the last of %u kick(s)\n",
			    static_cast<double>(b.blockedNs) / 1e6, static_cast<double>(b.afterLastKickNs) / 1e3, b.kicks);
	}
	return 0;
}

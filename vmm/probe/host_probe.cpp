#include "vmm/probe/host_probe.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "sched/ple.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

namespace spindle {

namespace {

constexpr uint64_t kProbeMemBytes = 4ull << 20;
constexpr uint64_t kCodeGpa = 0x200000;

// rcx counts iterations; the loop never ends by itself: the host kicks the vCPU out.
const std::vector<uint8_t> kSpeedLoop = {
	0x31, 0xc9,       // xor ecx, ecx
	0x48, 0xff, 0xc1, // 1: inc rcx
	0xeb, 0xfb,       // jmp 1b
};
const std::vector<uint8_t> kPauseLoop = {
	0x31, 0xc9,       // xor ecx, ecx
	0xf3, 0x90,       // 1: pause
	0x48, 0xff, 0xc1, // inc rcx
	0xeb, 0xf9,       // jmp 1b
};

// A one-vCPU VM entered at kCodeGpa with Spindle's boot state for the mode.
struct ProbeVm {
	GuestMemory memory;
	KvmVm vm;
	KvmVcpu vcpu;
};

Result<ProbeVm> makeProbeVm(const KvmSystem &kvm, GuestMode mode, const std::vector<uint8_t> &code)
{
	auto memory = GuestMemory::create(kProbeMemBytes);
	if (!memory)
		return memory.error();
	if (auto s = writePageTables(*memory, mode); !s)
		return s.error();
	if (auto s = writeGdt(*memory); !s)
		return s.error();
	if (auto s = memory->write(kCodeGpa, code); !s)
		return s.error();
	auto vm = kvm.createVm();
	if (!vm)
		return vm.error();
	if (auto s = vm->setMemorySlot(0, 0, *memory); !s)
		return s.error();
	auto mmapSize = kvm.vcpuMmapSize();
	if (!mmapSize)
		return mmapSize.error();
	auto vcpu = vm->createVcpu(0, *mmapSize);
	if (!vcpu)
		return vcpu.error();
	auto cpuid = kvm.supportedCpuid();
	if (!cpuid)
		return cpuid.error();
	if (auto s = vcpu->setCpuid(*cpuid); !s)
		return s.error();
	auto sregs = vcpu->sregs();
	if (!sregs)
		return sregs.error();
	if (auto s = vcpu->setSregs(longModeSregs(*sregs, mode)); !s)
		return s.error();
	if (auto s = vcpu->setRegs(entryRegs(kCodeGpa, kProbeMemBytes, 0)); !s)
		return s.error();
	return ProbeVm{std::move(*memory), std::move(*vm), std::move(*vcpu)};
}

struct ProbeRun {
	uint64_t iterations = 0;
	double seconds = 0;
	std::optional<uint64_t> pauseExits;
};

struct Tracepoint {
	uint64_t id;
	std::string filter;
};

// Runs the vCPU on a thread of its own for durationNs, then kicks it out. With a tracepoint,
// counts PAUSE exits on that thread meanwhile.
Result<ProbeRun> runFor(ProbeVm &probe, uint64_t durationNs, const std::optional<Tracepoint> &tracepoint)
{
	installVcpuKickHandler();
	std::atomic<pid_t> tid{0};
	std::atomic<bool> go{false}, stop{false};
	Status failure;
	uint64_t enteredNs = 0, leftNs = 0;
	std::thread thread([&] {
		sigset_t kick;
		sigemptyset(&kick);
		sigaddset(&kick, kVcpuKickSignal);
		pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
		tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
		while (!go.load())
			std::this_thread::yield();
		enteredNs = monotonicNs();
		while (!stop.load()) {
			auto status = probe.vcpu.runOnce();
			if (!status && (status.error().code() == EINTR || status.error().code() == EAGAIN)) {
				probe.vcpu.run()->immediate_exit = 0;
				continue;
			}
			if (!status) {
				failure = status;
				break;
			}
			if (probe.vcpu.run()->exit_reason != KVM_EXIT_INTR) {
				failure = Error(EIO, "probe guest stopped with exit reason " +
							     std::to_string(probe.vcpu.run()->exit_reason));
				break;
			}
		}
		leftNs = monotonicNs();
	});
	while (tid.load() == 0)
		std::this_thread::yield();
	std::optional<sched::PleCounter> counter;
	if (tracepoint) {
		auto opened = sched::PleCounter::open(tid.load(), tracepoint->id, tracepoint->filter);
		if (!opened) {
			stop = true;
			go = true;
			thread.join();
			return opened.error();
		}
		counter.emplace(std::move(*opened));
	}
	go = true;
	timespec pause{static_cast<time_t>(durationNs / 1'000'000'000), static_cast<long>(durationNs % 1'000'000'000)};
	nanosleep(&pause, nullptr);
	stop = true;
	__atomic_store_n(&probe.vcpu.run()->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(thread.native_handle(), kVcpuKickSignal);
	thread.join();
	if (!failure)
		return failure.error();

	ProbeRun run;
	auto regs = probe.vcpu.regs();
	if (!regs)
		return regs.error();
	run.iterations = regs->rcx;
	run.seconds = static_cast<double>(leftNs - enteredNs) / 1e9;
	if (counter) {
		auto exits = counter->readDelta();
		if (!exits)
			return exits.error();
		run.pauseExits = *exits;
	}
	return run;
}

} // namespace

Result<GuestSpeed> measureGuestSpeed(const KvmSystem &kvm, GuestMode mode, uint64_t durationNs)
{
	auto probe = makeProbeVm(kvm, mode, kSpeedLoop);
	if (!probe)
		return probe.error().wrap("speed probe VM");
	auto run = runFor(*probe, durationNs, std::nullopt);
	if (!run)
		return run.error().wrap("speed probe");
	return GuestSpeed{run->iterations, run->seconds};
}

Result<PauseExits> measurePauseExits(const KvmSystem &kvm, GuestMode mode, uint64_t tracepointId,
				     const std::string &filter, uint64_t durationNs)
{
	auto probe = makeProbeVm(kvm, mode, kPauseLoop);
	if (!probe)
		return probe.error().wrap("PAUSE probe VM");
	auto run = runFor(*probe, durationNs, Tracepoint{tracepointId, filter});
	if (!run)
		return run.error().wrap("PAUSE probe");
	return PauseExits{run->iterations, run->pauseExits.value_or(0)};
}

} // namespace spindle

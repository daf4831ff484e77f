#include "vmm/runtime/machine.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/say_once.h"
#include "vmm/boot/cpuid.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/runtime/exit_dispatch.h"

namespace spindle {

VirtualMachine::VirtualMachine(VmConfig config, int id, GuestMemory memory, KvmVm vm, FinishSignal &finished)
	: config_(std::move(config)), id_(id), memory_(std::move(memory)), vm_(std::move(vm)),
	  finishedSignal_(finished)
{
}

Result<std::unique_ptr<VirtualMachine>> VirtualMachine::create(const KvmSystem &kvm, VmConfig config, int id,
							       LineSink serialSink, FinishSignal &finished)
{
	const MemoryLayout layout{config.memBytes, config.cpus};
	if (auto status = validateLayout(layout); !status)
		return status.error();

	auto memory = GuestMemory::create(config.memBytes);
	if (!memory)
		return memory.error();
	auto vm = kvm.createVm();
	if (!vm)
		return vm.error();

	std::unique_ptr<VirtualMachine> machine(
		new VirtualMachine(std::move(config), id, std::move(*memory), std::move(*vm), finished));
	if (auto status = machine->setUp(kvm, std::move(serialSink)); !status)
		return status.error();
	return machine;
}

Status VirtualMachine::setUp(const KvmSystem &kvm, LineSink serialSink)
{
	const MemoryLayout layout{config_.memBytes, config_.cpus};
	auto image = parseElf(config_.elf, layout.kernelWindowStart(), layout.kernelWindowEnd());
	if (!image)
		return image.error().wrap("guest " + config_.guest);
	if (auto status = loadElf(*image, config_.elf, memory_); !status)
		return status;
	if (auto status = writePageTables(memory_, config_.mode); !status)
		return status;
	if (auto status = writeGdt(memory_); !status)
		return status;

	if (!config_.pauseExits) {
		if (!(vm_.checkExtension(KVM_CAP_X86_DISABLE_EXITS) & KVM_X86_DISABLE_EXITS_PAUSE))
			return Error(ENOTSUP, "--ple off needs KVM_CAP_X86_DISABLE_EXITS with PAUSE, which this KVM lacks");
		if (auto status = vm_.enableCap(KVM_CAP_X86_DISABLE_EXITS, KVM_X86_DISABLE_EXITS_PAUSE); !status)
			return status;
	}
	// RAM below the MMIO hole and from 1 MiB up: a guest access to the hole exits to user
	// space as MMIO, the one I/O path a ring-3 guest has.
	if (auto status = vm_.setMemorySlot(0, 0, memory_.hostBase(), SPINDLE_MMIO_HOLE_GPA); !status)
		return status;
	if (auto status = vm_.setMemorySlot(1, SPINDLE_KERNEL_MIN_GPA, memory_.hostBase() + SPINDLE_KERNEL_MIN_GPA,
					    memory_.size() - SPINDLE_KERNEL_MIN_GPA);
	    !status)
		return status;

	auto mmapSize = kvm.vcpuMmapSize();
	if (!mmapSize)
		return mmapSize.error();
	runSize_ = static_cast<size_t>(*mmapSize);
	auto supported = kvm.supportedCpuid();
	if (!supported)
		return supported.error();

	for (unsigned i = 0; i < config_.cpus; ++i) {
		auto vcpu = vm_.createVcpu(i, *mmapSize);
		if (!vcpu)
			return vcpu.error();
		if (auto status = vcpu->setCpuid(makeGuestCpuid(*supported, i, config_.spinThreshold, config_.cpuidFeatures));
		    !status)
			return status;
		auto sregs = vcpu->sregs();
		if (!sregs)
			return sregs.error();
		const kvm_sregs boot = longModeSregs(*sregs, config_.mode);
		if (auto status = vcpu->setSregs(boot); !status)
			return status;
		samplingTarget_.paging = {boot.cr0, boot.cr3, boot.cr4, boot.efer};
		if (auto status = vcpu->setRegs(entryRegs(image->entry, layout.stackTop(i), i)); !status)
			return status;
		vcpus_.push_back(std::move(*vcpu));
		counters_.push_back(std::make_unique<ExitCounters>());
	}

	// The TSC frequency lets guests turn TSC ticks into time; the vCPU ioctl works everywhere.
	uint64_t tscKhz = 0;
	if (auto khz = vcpus_.front().tscKhz())
		tscKhz = *khz;
	else if (firstTimeInProcess("no-tsc-khz"))
		spdlog::warn("{}: cannot read the TSC frequency ({}); guests that time themselves will refuse",
			     config_.name, khz.error().message());

	auto bootInfo = makeBootInfo({layout, &*image, tscKhz, config_.spinThreshold, config_.hints, config_.cpuidFeatures,
				      config_.mode, config_.args});
	if (!bootInfo)
		return bootInfo.error();
	if (auto status = memory_.writeObject(SPINDLE_BOOT_INFO_GPA, *bootInfo); !status)
		return status;
	// Every slot starts as "holds nothing, waits on nobody": zeroed memory would read as
	// "waiting on vCPU 0", and a guest that never touches its slot would have vCPU 0 expressed.
	for (unsigned i = 0; i < config_.cpus; ++i) {
		spindle_hint_slot slot{};
		slot.waiting_on = SPINDLE_VCPU_NONE;
		if (auto status = memory_.writeObject(SPINDLE_HINT_GPA + uint64_t{i} * SPINDLE_HINT_STRIDE, slot); !status)
			return status;
	}

	serial_ = std::make_shared<Serial>([this, sink = std::move(serialSink)](std::string_view line) {
		noteReport();
		sink(line);
	});
	pvDevice_ = std::make_shared<PvDevice>(memory_.bytes(), config_.cpus, static_cast<PvRecordSink &>(*this));
	if (auto status = pio_.insert(serial_, SPINDLE_SERIAL_PORT, Serial::kPortCount); !status)
		return status;
	if (auto status = pio_.insert(pvDevice_, SPINDLE_PV_PORT, SPINDLE_PV_PORT_COUNT); !status)
		return status;
	if (auto status = mmio_.insert(serial_, SPINDLE_SERIAL_MMIO_GPA, Serial::kPortCount); !status)
		return status;
	if (auto status = mmio_.insert(pvDevice_, SPINDLE_PV_MMIO_GPA, sizeof(uint32_t)); !status)
		return status;

	haltRequested_ = std::make_unique<std::atomic<bool>[]>(config_.cpus);
	cr8_ = std::make_unique<volatile uint8_t[]>(config_.cpus);
	samplingTarget_.ram = {memory_.bytes(), SPINDLE_MMIO_HOLE_GPA, SPINDLE_KERNEL_MIN_GPA};
	samplingTarget_.cr8 = cr8_.get();
	parking_ = std::make_unique<ParkingLot>(config_.cpus);
	results_.vcpus.resize(config_.cpus);
	return {};
}

VirtualMachine::~VirtualMachine()
{
	requestStop(StopReason::Requested, "VM destroyed");
	join();
}

const volatile spindle_hint_slot *VirtualMachine::hintSlots() const
{
	return reinterpret_cast<const volatile spindle_hint_slot *>(
		memory_.hostPointer(SPINDLE_HINT_GPA, uint64_t{config_.cpus} * SPINDLE_HINT_STRIDE));
}

Status VirtualMachine::start()
{
	installVcpuKickHandler();
	Status failure;
	{
		std::lock_guard lock(threadsMutex_);
		runningVcpus_ = config_.cpus;
		for (unsigned i = 0; i < config_.cpus && failure.ok(); ++i) {
			try {
				threads_.emplace_back(&VirtualMachine::vcpuLoop, this, i);
			} catch (const std::system_error &error) {
				runningVcpus_ -= config_.cpus - i;
				failure = Error(error.code().value(), "starting vCPU thread " + std::to_string(i));
			}
		}
	}
	if (!failure)
		requestStop(StopReason::Fatal, failure.error().message());
	return failure;
}

void VirtualMachine::noteReport()
{
	uint64_t expected = 0;
	firstReportNs_.compare_exchange_strong(expected, monotonicNs());
}

void VirtualMachine::vcpuLoop(unsigned index)
{
	KvmVcpu &vcpu = vcpus_[index];
	ExitCounters &counters = *counters_[index];
	const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
	pthread_setname_np(pthread_self(), ("vcpu" + std::to_string(index)).substr(0, 15).c_str());

	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, kVcpuKickSignal);
	pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);

	if (observer_)
		observer_->vcpuThreadStarted(id_, index, tid);
	// Set-up is done (the scheduler opened what it needs for this thread): from here on only
	// the vCPU role's calls.
	if (auto status = installSeccompFilter(ThreadRole::Vcpu, config_.seccomp); !status)
		requestStop(StopReason::Fatal, "vCPU " + std::to_string(index) + ": " + status.error().message());
	else if (index == 0)
		seccompSelfTest(ThreadRole::Vcpu, config_.seccomp);
	if (startGate_)
		startGate_->arriveAndWait();

	const ExitContext context{pio_, mmio_, index, runSize_, counters, [this, index](const std::string &what) {
					  // Said once per process; every one is counted (exits.unclaimed).
					  if (unclaimedTotal_.fetch_add(1, std::memory_order_relaxed) + 1 == kMaxUnclaimedAccesses)
						  requestStop(StopReason::Fatal,
							      "stopped: the guest made " + std::to_string(kMaxUnclaimedAccesses) +
								      " accesses to addresses no device claims (Spindle's limit per VM)");
					  if (firstTimeInProcess("unclaimed-access"))
						  spdlog::warn("{}: vCPU {}: unclaimed {} (ignored; further unclaimed "
							       "accesses are only counted, in --metrics)",
							       config_.name, index, what);
				  }};
	while (!stop_.load()) {
		counters.runs.fetch_add(1, std::memory_order_relaxed);
		auto status = vcpu.runOnce();
		if (!status) {
			if (status.error().code() == EINTR || status.error().code() == EAGAIN) {
				vcpu.run()->immediate_exit = 0;
				counters.add(ExitKind::Interrupted);
				continue;
			}
			requestStop(StopReason::Fatal, "vCPU " + std::to_string(index) + ": " + status.error().message());
			break;
		}
		cr8_[index] = static_cast<uint8_t>(vcpu.run()->cr8 & 0xf);
		ExitResult result = dispatchExit(*vcpu.run(), context);
		if (haltRequested_[index].load(std::memory_order_relaxed))
			break; // a HALT record: done, as after HLT
		if (result.outcome == ExitOutcome::Continue)
			continue;
		if (result.outcome == ExitOutcome::Fatal)
			requestStop(StopReason::Fatal,
				    "vCPU " + std::to_string(index) + ": " + result.reason + "; " + describeVcpuState(index));
		break; // Halted or Fatal: this vCPU is done
	}

	if (observer_)
		observer_->vcpuThreadStopping(id_, index);
	if (runningVcpus_.fetch_sub(1) == 1) {
		requestStop(StopReason::AllHalted, "every vCPU halted without the guest reporting an exit code");
		finished_ = true;
		finishedSignal_.notify();
	}
}

std::string VirtualMachine::describeVcpuState(unsigned index) const
{
	auto regs = vcpus_[index].regs();
	auto sregs = vcpus_[index].sregs();
	if (!regs || !sregs)
		return "registers unavailable";
	// SVM's shutdown intercept resets the vCPU before KVM reports KVM_EXIT_SHUTDOWN, so on AMD
	// the registers read back as the reset state; say so rather than print misleading values.
	if (regs->rip == 0xfff0 && sregs->cr0 == 0x10 && sregs->cs.base == 0xffff0000)
		return "registers unavailable (KVM reset the vCPU on shutdown, as it does on AMD SVM)";
	char text[320];
	snprintf(text, sizeof(text),
		 "rip=%#" PRIx64 " rsp=%#" PRIx64 " rflags=%#" PRIx64 " rax=%#" PRIx64 " rdi=%#" PRIx64
		 " cr0=%#" PRIx64 " cr3=%#" PRIx64 " cr4=%#" PRIx64 " efer=%#" PRIx64,
		 static_cast<uint64_t>(regs->rip), static_cast<uint64_t>(regs->rsp), static_cast<uint64_t>(regs->rflags),
		 static_cast<uint64_t>(regs->rax), static_cast<uint64_t>(regs->rdi), static_cast<uint64_t>(sregs->cr0),
		 static_cast<uint64_t>(sregs->cr3), static_cast<uint64_t>(sregs->cr4), static_cast<uint64_t>(sregs->efer));
	return text;
}

void VirtualMachine::requestStop(StopReason reason, const std::string &message)
{
	{
		std::lock_guard lock(mutex_);
		if (stopReason_ == StopReason::None) {
			stopReason_ = reason;
			stopMessage_ = message;
		}
	}
	if (!stop_.exchange(true)) {
		// A parked vCPU is outside KVM_RUN: the kick signal does not reach it, the lot does.
		if (parking_)
			parking_->stopAll();
		kickAll();
	}
	finishedSignal_.notify();
}

void VirtualMachine::kickAll()
{
	std::lock_guard lock(threadsMutex_);
	for (size_t i = 0; i < vcpus_.size(); ++i) {
		// immediate_exit covers a kick that lands before the thread enters KVM_RUN.
		__atomic_store_n(&vcpus_[i].run()->immediate_exit, 1, __ATOMIC_RELEASE);
		if (i < threads_.size() && threads_[i].joinable())
			pthread_kill(threads_[i].native_handle(), kVcpuKickSignal);
	}
}

void VirtualMachine::join()
{
	std::vector<std::thread> threads;
	{
		std::lock_guard lock(threadsMutex_);
		threads.swap(threads_);
	}
	for (auto &thread : threads)
		if (thread.joinable())
			thread.join();
	if (serial_)
		serial_->flush();
	finished_ = true;
}

StopReason VirtualMachine::stopReason() const
{
	std::lock_guard lock(mutex_);
	return stopReason_;
}

std::string VirtualMachine::stopMessage() const
{
	std::lock_guard lock(mutex_);
	return stopMessage_;
}

std::optional<int> VirtualMachine::guestExitCode() const
{
	std::lock_guard lock(mutex_);
	return exitCode_;
}

GuestResults VirtualMachine::results() const
{
	std::lock_guard lock(mutex_);
	return results_;
}

void VirtualMachine::onPvRecord(unsigned vcpu, const PvRecord &record)
{
	counters_[vcpu]->add(ExitKind::PvRecord);
	noteReport();
	if (const auto *spin = std::get_if<PvLongSpin>(&record)) {
		{
			std::lock_guard lock(mutex_);
			++results_.longSpins;
		}
		if (observer_)
			observer_->longSpin(id_, vcpu, spin->waitsOn, spin->lockId);
		return;
	}
	if (const auto *wait = std::get_if<PvWait>(&record)) {
		// On the vCPU's own thread, outside KVM_RUN, holding no lock: the decoder checked that
		// the word is aligned and in RAM. A guest that changes it right after the read only
		// parks until its deadline or the next kick, as the ABI says.
		bool holds = true;
		if (wait->wordGpa)
			holds = __atomic_load_n(reinterpret_cast<const uint32_t *>(memory_.hostBase() + wait->wordGpa),
						__ATOMIC_ACQUIRE) == wait->expected;
		parking_->parkUntilWoken(vcpu, holds, wait->timeoutNs);
		return;
	}
	if (const auto *kick = std::get_if<PvKick>(&record)) {
		parking_->kick(vcpu, kick->vcpu);
		return;
	}
	if (std::holds_alternative<PvHalt>(record)) {
		counters_[vcpu]->add(ExitKind::Hlt);
		haltRequested_[vcpu].store(true, std::memory_order_relaxed);
		return;
	}
	if (const auto *exit = std::get_if<PvExit>(&record)) {
		{
			std::lock_guard lock(mutex_);
			if (!exitCode_)
				exitCode_ = exit->code;
		}
		requestStop(StopReason::GuestExit, "guest exited with code " + std::to_string(exit->code));
		return;
	}
	std::lock_guard lock(mutex_);
	if (const auto *error = std::get_if<PvGuestError>(&record)) {
		if (results_.guestErrors.size() < 16)
			results_.guestErrors.push_back(error->text);
	} else if (const auto *vcpuResult = std::get_if<PvResultVcpu>(&record)) {
		results_.vcpus[vcpu] = vcpuResult->raw;
	} else if (const auto *vmResult = std::get_if<PvResultVm>(&record)) {
		results_.vm = vmResult->raw;
	}
}

void VirtualMachine::onMalformedPvRecord(unsigned vcpu, const Error &reason)
{
	counters_[vcpu]->add(ExitKind::PvMalformed);
	if (malformedTotal_.fetch_add(1, std::memory_order_relaxed) + 1 == kMaxMalformedPvRecords)
		requestStop(StopReason::Fatal, "stopped: the guest sent " + std::to_string(kMaxMalformedPvRecords) +
						       " malformed PV records (Spindle's limit per VM)");
	if (firstTimeInProcess("malformed-pv-record"))
		spdlog::warn("{}: vCPU {}: dropped a malformed PV record: {} (further ones are only counted, in --metrics)",
			     config_.name, vcpu, reason.message());
}

} // namespace spindle

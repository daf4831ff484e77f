#pragma once

// One running guest: guest RAM, the KVM VM, its vCPUs (one thread each), the buses and devices.
// Several VirtualMachines can live in one process (a pool under one scheduler).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "devices/bus.h"
#include "devices/pv_device.h"
#include "devices/serial.h"
#include "sched/sampling/vcpu_sampler.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/runtime/seccomp_filter.h"
#include "vmm/runtime/vcpu_parking.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/runtime/exit_counters.h"
#include "vmm/runtime/guest_results.h"

namespace spindle {

struct VmConfig {
	std::string name;         // "vm0", shown in logs and metrics
	std::string guest;        // guest name or kernel path, for display
	std::vector<uint8_t> elf; // the guest image
	unsigned cpus = 1;
	uint64_t memBytes = 64ull << 20;
	std::string args;         // guest arguments, joined by spaces
	uint32_t spinThreshold = SPINDLE_DEFAULT_SPIN_THRESHOLD;
	bool pauseExits = true;   // false: KVM_X86_DISABLE_EXITS_PAUSE (no PLE at all)
	GuestMode mode = GuestMode::Ring0;
	std::string modeReason;   // why this mode (for --stats and the metrics)
	// What the guest is told it may use (boot flags, CPUID features): follows --detect.
	SeccompMode seccomp = SeccompMode::Off; // the vCPU threads' filter
	bool hints = true;
	uint32_t cpuidFeatures = SPINDLE_CPUID_F_PV_DEVICE | SPINDLE_CPUID_F_LONG_SPIN | SPINDLE_CPUID_F_HINTS;
};

// Notified from vCPU threads; implementations must be thread-safe and must not block.
class VmObserver
{
public:
	virtual ~VmObserver() = default;
	virtual void vcpuThreadStarted(int vm, unsigned vcpu, pid_t tid) = 0;
	virtual void vcpuThreadStopping(int vm, unsigned vcpu) = 0;
	virtual void longSpin(int vm, unsigned vcpu, uint32_t waitsOn, uint32_t lockId) = 0;
};

// Wakes whoever waits for any VM of a session to finish.
class FinishSignal
{
public:
	void notify()
	{
		{
			std::lock_guard lock(mutex_);
			++generation_;
		}
		cv_.notify_all();
	}
	// Waits until notified after `seen` or until timeout; returns the generation.
	uint64_t waitFor(uint64_t seen, std::chrono::milliseconds timeout)
	{
		std::unique_lock lock(mutex_);
		cv_.wait_for(lock, timeout, [&] { return generation_ != seen; });
		return generation_;
	}

private:
	std::mutex mutex_;
	std::condition_variable cv_;
	uint64_t generation_ = 0;
};

// Holds every vCPU thread of a session before its first KVM_RUN until all of them are set up
// (attached to the scheduler), so the guests start together. Without it the first VMs ran while
// the rest were still starting, and once their boosts or gang turns held the CPUs, a thread not
// yet attached (so never deprioritized nor boosted, just starved) could not even attach: on PVM
// at 4x, 12 of 303 matrix runs took 2 s instead of 1, some VMs running nearly alone (efficiency
// above 4) and others starved (below 0.1). Opening once the threads merely existed halved that.
class StartGate
{
public:
	// How many threads will arrive; set before any of them starts.
	void expect(unsigned threads) { remaining_.store(threads, std::memory_order_relaxed); }
	// A thread that is set up counts itself and waits for the others; the last one opens.
	void arriveAndWait()
	{
		if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1)
			open();
		wait();
	}
	// Opens at once (a VM failed to start: the others must see the stop and end).
	void open()
	{
		open_.store(true, std::memory_order_release);
		open_.notify_all();
	}
	void wait() const { open_.wait(false, std::memory_order_acquire); }
	bool isOpen() const { return open_.load(std::memory_order_acquire); }

private:
	std::atomic<unsigned> remaining_{0};
	std::atomic<bool> open_{false};
};

enum class StopReason {
	None,
	GuestExit,  // the guest sent an EXIT record
	AllHalted,  // every vCPU halted without an EXIT record
	Fatal,      // triple fault, failed entry, KVM error
	Requested,  // timeout or signal: the host stopped it
};

class VirtualMachine : private PvRecordSink
{
public:
	using LineSink = Serial::LineSink;

	// A hostile guest's floods cost it its own vCPU time and are counted; past these it is
	// stopped, since no legitimate guest comes near them (README: "Hostile guests, bounded").
	static constexpr uint64_t kMaxMalformedPvRecords = 10'000;
	static constexpr uint64_t kMaxUnclaimedAccesses = 10'000;

	// Builds everything and loads the guest; no thread runs yet.
	static Result<std::unique_ptr<VirtualMachine>> create(const KvmSystem &kvm, VmConfig config, int id,
							      LineSink serialSink, FinishSignal &finished);
	~VirtualMachine() override;

	void setObserver(VmObserver *observer) { observer_ = observer; }
	// The session's gate; without one the vCPUs enter the guest as soon as they are set up.
	void setStartGate(StartGate *gate) { startGate_ = gate; }
	Status start();
	// Asks every vCPU to leave KVM_RUN and stop; returns at once (join() waits).
	void requestStop(StopReason reason, const std::string &message = {});
	void join();

	bool finished() const { return finished_.load(); }
	StopReason stopReason() const;
	std::string stopMessage() const;
	// The guest's exit code, when it sent one.
	std::optional<int> guestExitCode() const;

	const VmConfig &config() const { return config_; }
	int id() const { return id_; }
	const GuestMemory &memory() const { return memory_; }
	const volatile spindle_hint_slot *hintSlots() const;
	// What the scheduler's sampling detector may read: guest RAM, the boot paging registers,
	// each vCPU's CR8 as of its last exit.
	const sched::sampling::SamplingTarget &samplingTarget() const { return samplingTarget_; }
	const ExitCounters &counters(unsigned vcpu) const { return *counters_[vcpu]; }
	uint64_t pvMalformed() const { return pvDevice_->malformedCount(); }
	GuestResults results() const;
	ParkingCounters parkingCounters(unsigned vcpu) const { return parking_->counters(vcpu); }
	// CLOCK_MONOTONIC ns of the first PV record or serial line from this guest (0: none yet).
	uint64_t firstReportNs() const { return firstReportNs_.load(); }

private:
	VirtualMachine(VmConfig config, int id, GuestMemory memory, KvmVm vm, FinishSignal &finished);
	Status setUp(const KvmSystem &kvm, LineSink serialSink);
	void vcpuLoop(unsigned index);
	void kickAll();
	void noteReport();
	std::string describeVcpuState(unsigned index) const;

	void onPvRecord(unsigned vcpu, const PvRecord &record) override;
	void onMalformedPvRecord(unsigned vcpu, const Error &reason) override;

	VmConfig config_;
	int id_;
	GuestMemory memory_;
	KvmVm vm_;
	std::vector<KvmVcpu> vcpus_;
	std::vector<std::unique_ptr<ExitCounters>> counters_;
	// Set by a HALT record on the vCPU's own thread, read by its loop after the exit.
	std::unique_ptr<std::atomic<bool>[]> haltRequested_;
	std::unique_ptr<volatile uint8_t[]> cr8_; // kvm_run->cr8 of each vCPU after its last exit
	sched::sampling::SamplingTarget samplingTarget_;
	// WAIT parks the vCPU's thread here (outside KVM_RUN), KICK and the VM's stop wake it.
	std::unique_ptr<ParkingLot> parking_;
	std::mutex threadsMutex_; // start() and kickAll() race when a guest exits at once
	std::vector<std::thread> threads_;
	size_t runSize_ = 0;

	Bus pio_{"port I/O bus"};
	Bus mmio_{"MMIO bus"};
	std::shared_ptr<Serial> serial_;
	std::shared_ptr<PvDevice> pvDevice_;
	VmObserver *observer_ = nullptr;
	StartGate *startGate_ = nullptr;
	FinishSignal &finishedSignal_;

	std::atomic<bool> stop_{false};
	std::atomic<bool> finished_{false};
	std::atomic<unsigned> runningVcpus_{0};
	std::atomic<uint64_t> firstReportNs_{0};
	std::atomic<uint64_t> malformedTotal_{0};
	std::atomic<uint64_t> unclaimedTotal_{0};
	mutable std::mutex mutex_; // guards the fields below
	StopReason stopReason_ = StopReason::None;
	std::string stopMessage_;
	std::optional<int> exitCode_;
	GuestResults results_;
};


} // namespace spindle

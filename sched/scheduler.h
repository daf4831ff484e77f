#pragma once

// The scheduler as the VMM uses it: the policy core, the host actuator, the detectors and one
// scheduler thread with its event loop, behind a small API.
//
//   auto sched = Scheduler::create(options, poolCpus);      // validates options and pool
//   int vm = *sched->addVm("vm0", vcpus, hintArray);         // hintArray may be null
//   sched->attachVcpuThread(vm, i, tid);                     // from each vCPU thread, before KVM_RUN
//   sched->start();
//   ... vCPU thread on a PV long-spin record: sched->notifyLongSpin(vm, i, waitsOn, lockId);
//   sched->vmStopped(vm);                                    // restores that VM's threads
//   sched->stop();                                           // restores every thread
//   sched->writeMetricsJson(json);                           // or metrics(), the same as a struct
//
// Placement: vCPU threads are pinned round-robin over the pool in attach order of VMs and vCPUs
// (VM 0's vCPU 0 on pool[0], vCPU 1 on pool[1], ..., continuing with the next VM where the last
// one stopped), so k VMs of n vCPUs on n CPUs put one vCPU of each VM on every CPU. Under cfs
// that is all Spindle does.
//
// Threading: notifyLongSpin() is lock-free and never blocks (an atomic store and at most one
// eventfd write); every other call takes the scheduler's lock and may be made from any thread.

#include <sys/types.h>

#include <array>
#include <functional>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "sched/actuator.h"
#include "sched/metrics.h"
#include "sched/thread_states.h"
#include "sched/options.h"
#include "sched/pool.h"
#include "sched/ple.h"
#include "sched/sampling/vcpu_sampler.h"
#include "sched/tick_backoff.h"
#include "sched/tick_timers.h"

struct spindle_hint_slot;

namespace spindle::sched {

class SchedCore;
class MonotonicClock;
class TraceWriter;
struct Action;


class Scheduler
{
public:
	static constexpr int kMaxVms = 64;

	static Result<std::unique_ptr<Scheduler>> create(SchedulerOptions options, std::vector<int> poolCpus);
	~Scheduler(); // stop()

	// Returns the VM id; an input error past kMaxVms or for vcpuCount 0 or above SPINDLE_MAX_VCPUS.
	// sampling: what the sampling detector may read of the VM (its RAM, paging, CR8); null: the
	// VM's vCPUs are not sampled. It must outlive the VM's threads.
	Result<int> addVm(std::string name, unsigned vcpuCount, const volatile spindle_hint_slot *hints,
			  const sampling::SamplingTarget *sampling = nullptr);
	// Records the thread's scheduling state, pins it by the placement, opens its PLE counter.
	Status attachVcpuThread(int vm, unsigned vcpu, pid_t tid);
	// From the vCPU thread just before it exits: restores and forgets the thread, so nothing is
	// applied to (or later "restored" on) a tid that no longer exists or was reused.
	void detachVcpuThread(int vm, unsigned vcpu);
	// Thread-safe, non-blocking; excess notifications are rate-limited and counted as dropped.
	void notifyLongSpin(int vm, unsigned vcpu, uint32_t waitsOn, uint32_t lockId);
	// Ends the VM's boosts and restores its threads' original policy, priority and affinity.
	void vmStopped(int vm);

	// Called first on the scheduler thread once it runs (the VMM installs its seccomp filter
	// there); set before start().
	void setThreadStartHook(std::function<void()> hook) { threadStartHook_ = std::move(hook); }
	Status start();
	void stop(); // joins the scheduler thread, restores every thread; idempotent

	// The core's counters and what only the host side knows.
	SchedulerMetrics metrics() const;
	// metrics() as one JSON object (metrics.h), appended.
	void writeMetricsJson(std::string &out) const;
	const char *eventLoopBackend() const { return backend_; }
	const std::vector<int> &poolCpus() const { return pool_; }

	// For tests and benchmarks: what the scheduler thread does on a tick / on a PLE report.
	void tickNow();
	void reportSpin(int vm, unsigned vcpu);

private:
	Scheduler(SchedulerOptions options, std::vector<int> pool);
	struct PvSlot {
		std::atomic<uint64_t> latest{ 0 };  // waitsOn << 32 | lockId
		std::atomic<uint32_t> pending{ 0 }; // notifications since the last drain
	};
	struct PvVm {
		unsigned vcpus = 0;
		std::unique_ptr<PvSlot[]> slots;
	};

	void run();
	void notePleOff(const std::string &reason) const;
	void drainSamplesLocked();
	void onTick();
	void onExpiry();
	void onNotify();
	// Thread states, PAUSE-exit counts and RIP samples since the last observation, into the core.
	void observeLocked();
	void drainNotificationsLocked();
	void applyLocked();
	// After an event: the actions applied, the expiry timer armed, the tick paced.
	void finishLocked();
	void armExpiryLocked();
	// At each turn's end while the policy runs turns, else the quiet tick while the core allows
	// it, else the fast one.
	void paceTickLocked();
	// A boost its alarm ended (boost_alarm.h): how late past the budget, from the thread's time.
	void recordAlarmEnd(const Action &a, uint64_t endedNs);
	void recordActuation(const Action &action, uint64_t doneNs);
	// Rise: a boost is about to be applied. RiseIfBoosted: the model has boosts. Follow: after a
	// batch, match the model (rise or lower).
	enum class KeepAhead { Rise, RiseIfBoosted, Follow };
	void keepAheadOfBoostsLocked(KeepAhead mode);
	// The scheduler thread back to the state it started with, read back and counted like a vCPU
	// thread's restore (its affinity is never changed, so only its attributes are compared).
	static Status restoreSchedulerThread(pid_t self, const SchedAttr &original, HostBoostStats &stats);

	// What the host side keeps per vCPU; the model lives in the core.
	struct HostVcpu {
		pid_t tid = 0; // 0: not attached (yet, or any more)
		std::unique_ptr<PleCounter> ple;
		std::unique_ptr<sampling::VcpuSampler> sampler;
		bool boostApplied = false; // a boost system call succeeded and no unboost followed yet
		uint64_t boostAppliedNs = 0;
		uint64_t boostBudgetNs = 0;
	};
	HostVcpu &host(int vm, unsigned vcpu) { return host_[static_cast<size_t>(vm)][vcpu]; }

	SchedulerOptions options_;
	std::vector<int> pool_;
	std::unique_ptr<MonotonicClock> clock_;
	mutable std::mutex mutex_;
	std::unique_ptr<SchedCore> core_;
	std::unique_ptr<HostActuator> actuator_;
	std::unique_ptr<ThreadStates> threadStates_;
	std::unique_ptr<TraceWriter> trace_;
	std::vector<std::vector<HostVcpu>> host_;
	std::vector<pid_t> observeTids_; // observeLocked's, kept between ticks
	std::vector<VcpuId> observeWho_;
	HostBoostStats hostStats_;
	// The scheduler thread runs at SCHED_FIFO fifoPriority + 1 while any boost is in flight: a
	// boosted FIFO vCPU on the CPU where the scheduler thread is queued would otherwise keep it
	// from ending that very boost until RT throttling steps in (950 ms of every second).
	std::atomic<pid_t> schedulerTid_{ 0 };
	SchedAttr schedulerOriginal_{};
	bool schedulerRealtime_ = false;
	bool schedulerRealtimeFailed_ = false;
	bool samplingOn_ = false; // the sampling detector runs (decided in create())
	std::vector<const sampling::SamplingTarget *> samplingTargets_; // per VM, may be null
	uint64_t pleTracepoint_ = 0;
	std::string pleFilter_;
	bool pleAvailable_ = false;
	uint64_t actuationErrors_ = 0;
	uint64_t ticks_ = 0;
	uint64_t quietTicks_ = 0;
	uint64_t turnTicks_ = 0;
	uint64_t backedOffTicks_ = 0;
	// The tick's pace: --sched-tick, --quiet-tick, or at each turn's end (paceTickLocked).
	enum class TickPace : uint8_t { Fast, Quiet, Turns };
	TickPace pace_ = TickPace::Fast;
	TickBackoff backoff_{ options_.tickNs, options_.tickBackoffNs }; // the fast tick's period while pace_ is Fast
	// Whether the thread states may be older than a fast tick (observe before answering).
	bool statesStaleLocked() const { return pace_ != TickPace::Fast || backoff_.periodNs() > options_.tickNs; }
	uint64_t pacedTurnEndsNs_ = 0; // the turn end the tick is aligned to (TickPace::Turns)
	uint64_t lastObservedNs_ = 0; // when observeLocked() last ran (PAUSE-exit rate per tick)
	uint64_t threadsAttached_ = 0;
	uint64_t samplersStopped_ = 0;

	std::array<std::atomic<PvVm *>, kMaxVms> pv_{};
	std::vector<std::unique_ptr<PvVm>> pvOwned_; // never freed before the Scheduler: racing notifiers

	// At most one eventfd wake per this long from long-spin notifications (a flood's cost).
	static constexpr uint64_t kMinNotifyWakeNs = 200'000;
	std::atomic<uint64_t> lastNotifyWakeNs_{ 0 };
	// False while the policy answers no spin (Policy::answersSpins): reports wait for a tick.
	std::atomic<bool> wakeOnReports_{ true };
	UniqueFd notifyFd_, stopFd_;
	std::optional<TickTimers> timers_;
	std::function<void()> threadStartHook_;
	std::thread thread_;
	std::atomic<bool> running_{ false };
	const char *backend_ = "none";
};

} // namespace spindle::sched

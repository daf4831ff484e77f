#pragma once

// The pure policy core. It owns the model, applies events to it, runs the detectors that need no
// host access (pattern classification, PV rate limit, hint validation), keeps the fairness ledger
// (ledger.h) and the share guard (share_guard.h), and asks the configured policy (policy.h,
// policies/) what to do. Its only outputs are Actions (drained with takeActions()) and trace
// records. It makes no system calls and reads time only from the injected Clock, so a test can
// drive it scenario by scenario.
//
// Not thread-safe: the Scheduler calls it from its one thread (or under its lock).

#include <memory>
#include <string>
#include <vector>

#include "sched/metrics.h"
#include "sched/model.h"
#include "sched/options.h"
#include "sched/share_guard.h"
#include "sched/timed_vcpus.h"

namespace spindle::sched {

class Policy;

struct TraceRecord {
	uint64_t tNs;
	const char *event; // "spin", "boost", "unboost", "move", "deny", ...
	VcpuId who;
	const char *detail; // source, reason or bound
	uint64_t value;     // budget, cpu, count: depends on the event
};

class SchedCore
{
public:
	SchedCore(SchedulerOptions options, std::vector<int> poolCpus, const Clock &clock);
	~SchedCore();
	SchedCore(const SchedCore &) = delete;
	SchedCore &operator=(const SchedCore &) = delete;

	// ---- Configuration --------------------------------------------------------------------
	// Adds a VM; its vCPUs get home CPUs round-robin over the pool, continuing where the
	// previous VM stopped (so k VMs of n vCPUs on n CPUs stack k vCPUs per CPU, one of each VM).
	// hints may be null (no hint page). Returns the VM id (ids are never reused).
	int addVm(std::string name, unsigned vcpuCount, const volatile spindle_hint_slot *hints);
	// Ends every boost and deprioritization of the VM and forgets its hints.
	void removeVm(int vm);
	void enableTrace(bool on) { traceOn_ = on; }

	// ---- Events in ------------------------------------------------------------------------
	void spinDetected(VcpuId spinner, SpinSource source, uint32_t waitsOn = kNoVcpu);
	// A long-spin notification (count > 1: coalesced ones since the last drain).
	void longSpin(VcpuId spinner, uint32_t waitsOn, uint32_t lockId, uint32_t count = 1);
	// PAUSE exits of one vCPU during the last window, as a count per fast tick (perTick), and
	// as counted in a window longer than a fast tick (a quiet tick; 0: the window was one tick).
	void pauseExits(VcpuId who, uint64_t perTick, uint64_t inLongWindow = 0);
	// RIP samples classified since the last tick and the hints they carry (a spin they show is
	// reported with spinDetected(who, SpinSource::Sampled)).
	void sampled(VcpuId who, uint64_t samples, uint8_t cpl, bool likelyHoldsLock);
	void vcpuState(VcpuId who, VcpuState state, int cpu);
	// CPU time the vCPU's thread consumed since the previous report (call before tick()).
	void cpuTime(VcpuId who, uint64_t deltaNs);
	// A hint value as read (untrusted): validated here.
	void hintUpdate(VcpuId who, uint32_t seq, uint32_t locksHeld, uint32_t waitingOn);
	// The host measured that the last boost of `who` outlived its budget by extraNs (the unboost
	// came late): a debited boost is charged for what it really took, not what was granted.
	void chargeOverrun(VcpuId who, uint64_t extraNs);
	// Ends what is due (boosts, deprioritizations). Cheap; call on the expiry timer.
	void expire();
	// The periodic tick: expire(), sample hint slots, repay debts, then the policy's tick.
	void tick();

	// ---- Actions out ----------------------------------------------------------------------
	std::vector<Action> takeActions();
	std::vector<TraceRecord> takeTrace();
	// The earliest time something must expire (UINT64_MAX: nothing pending).
	uint64_t nextExpiryNs() const;

	// ---- For policies: grants that enforce the ledger and the model's invariants ------------
	// Boosts `who` for budgetNs. A debited boost is refused while the vCPU is in debt or its VM
	// over its share. Refused too for an inactive VM or a vCPU already boosted. With onCpu >= 0
	// the vCPU is pinned there for this boost only (a refused boost moves nothing) and back to
	// its placement when the boost ends. Returns whether it was granted.
	bool grantBoost(VcpuId who, uint64_t budgetNs, BoostReason reason, bool debited, int onCpu = -1);
	// Ends a boost now; `early` credits the unused budget back to the ledger.
	void endBoost(VcpuId who, bool early);
	void deprioritize(VcpuId who, uint64_t durationNs);
	void restorePriority(VcpuId who);
	void countDenied(VcpuId who, const char *bound);
	void traceEvent(const char *event, VcpuId who, const char *detail, uint64_t value);
	// From onHint: the extension of `who` was just ended because the hint said released. Records
	// how late that end can have come (extensionEndLateMaxNs()).
	void extensionEndedByRelease(VcpuId who);

	// ---- Inspection -----------------------------------------------------------------------
	uint64_t now() const { return clock_.nowNs(); }
	const SchedulerOptions &options() const { return options_; }
	const std::vector<int> &poolCpus() const { return poolCpus_; }
	size_t vmCount() const { return vms_.size(); }
	const VmModel &vm(int id) const { return vms_[static_cast<size_t>(id)]; }
	VmModel &vm(int id) { return vms_[static_cast<size_t>(id)]; }
	const VcpuModel &vcpu(VcpuId id) const { return vm(id.vm).vcpus[id.vcpu]; }
	VcpuModel &vcpu(VcpuId id) { return vm(id.vm).vcpus[id.vcpu]; }
	bool valid(VcpuId id) const;
	unsigned boostedCount() const; // vCPUs boosted now, every VM
	// Whether the scheduler may tick at quietTickNs instead of tickNs: no spin wait in any VM
	// for kQuietAfterTicks ticks (and the core at least that old) where the policy answers spin
	// waits (Policy::answersSpins), no vCPU boosted, deprioritized, in debt or penalized, no VM
	// over its share, and a policy that acts only on spin waits (Policy::allowsQuietTicks).
	// Then a tick has nothing to end, repay or answer.
	bool quietTickAllowed() const;
	static constexpr unsigned kQuietAfterTicks = 100;
	// Extensions ended because a re-read hint said released: how long after the previous read
	// of that slot (the release happened in between), i.e. how late the end can have come.
	uint64_t extensionEndLateMaxNs() const { return extendEndLateMaxNs_; }
	Policy &policy() { return *policy_; }
	// Whether the policy would answer a spin wait now (Policy::answersSpins).
	bool answersSpins() const;
	// When the policy's current turn ends (Policy::turnEndsNs), 0 outside turns.
	uint64_t turnEndsNs() const;

	// Counts spin waits detected, boosts granted and PAUSE-exit bursts in a long tick (one the
	// pattern detector cannot judge), every VM: the tick's back-off (tick_backoff.h) watches it
	// for change.
	uint64_t activity() const { return activity_; }

	// Every counter, per VM and vCPU, with each VM's totals.
	CoreMetrics metrics() const;
	// metrics() as JSON (metrics.h): {"policy":..., "vms":[{...,"vcpus":[...]}], ...}.
	void writeMetricsJson(std::string &out) const;

private:
	void repay(uint64_t elapsedNs);
	void updateShares(uint64_t elapsedNs);
	void updatePenalty(VcpuId who);
	void sampleHints();
	void readHintSlot(VcpuId who);
	void pollExtensions();
	bool extensionRunning() const;
	void emit(Action action);
	void pin(VcpuId who, int cpu);

	SchedulerOptions options_;
	std::vector<int> poolCpus_;
	const Clock &clock_;
	std::unique_ptr<Policy> policy_;
	std::vector<VmModel> vms_;
	std::vector<Action> actions_;
	std::vector<TraceRecord> trace_;
	bool traceOn_ = false;
	unsigned nextPlacement_ = 0;
	uint64_t lastTickNs_ = 0;
	bool ticked_ = false;
	uint64_t lastSpinAnyNs_ = 0; // the last spin wait in any VM, or the core's creation
	uint64_t lastPauseBurstNs_ = 0; // a quiet tick too long for the pattern detector to judge
	bool pauseBurstSeen_ = false;
	uint64_t lastHintPollNs_ = 0;
	uint64_t activity_ = 0;
	uint64_t extendEndLateMaxNs_ = 0;
	uint64_t extendEndLateSumNs_ = 0;
	uint64_t extendEndLateCount_ = 0;
	ShareGuard shareGuard_;
	TimedVcpus timed_; // every vCPU boosted or deprioritized now
};

} // namespace spindle::sched

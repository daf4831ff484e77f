#pragma once

// Policies: each a small class that reads like the idea it implements. The core calls them after
// it has applied an event to the model; they answer by calling the core's grant helpers, which
// enforce the ledger, so no policy can boost a vCPU in debt by mistake.

#include <memory>

#include "sched/core.h"

namespace spindle::sched {

class Policy
{
public:
	virtual ~Policy() = default;
	// A spin wait was detected on `spinner`; waitsOn names the vCPU it waits on, if known.
	virtual void onSpin(SchedCore &, VcpuId /*spinner*/, SpinSource, uint32_t /*waitsOn*/) {}
	// The hint slot of `who` changed (already validated into the model).
	virtual void onHint(SchedCore &, VcpuId /*who*/) {}
	virtual void onTick(SchedCore &) {}
	virtual void onBoostEnded(SchedCore &, VcpuId /*who*/, BoostReason, bool /*early*/) {}
};

// Baseline: stock Linux decides; the core still detects and counts.
class CfsPolicy : public Policy
{
};

// Stock Xen on a PLE exit: the spinner steps aside. One thread cannot make another call
// sched_yield(), so the spinner is made SCHED_IDLE for yieldNs, at most once per
// yieldMinIntervalNs, which is the bound that keeps it from starving itself.
class YieldPolicy : public Policy
{
public:
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t) override;
};

// KAIST co-boosting: on a spin wait in VM d, boost every runnable-but-not-running sibling of the
// spinner for one slice, moving a sibling stacked behind another running sibling to a pool CPU
// running none first. One round per VM in flight; indebted siblings are skipped; the spinner is
// left alone.
class CoboostPolicy : public Policy
{
public:
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t) override;
	void onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool early) override;
	// Starts a round with the given slice; returns the number of siblings boosted.
	unsigned coboost(SchedCore &core, VcpuId spinner, uint64_t sliceNs);
};

// Patent, time-slice extension: a running vCPU whose hint says it holds a lock is boosted so the
// host does not preempt it inside the critical section: at most extendMaxNs, one extension per
// lock hold, extendMaxPerWindow per window, debited, ended as soon as the hint says released
// (noticed at the next tick: hint slots are sampled once per tick).
class ExtendPolicy : public Policy
{
public:
	void onHint(SchedCore &core, VcpuId who) override;
	void onTick(SchedCore &core) override;
	bool tryExtend(SchedCore &core, VcpuId who);
};

// Patent, express scheduling: a de-scheduled vCPU named by a long-spin notification or a hint
// (the holder, or the next waiter of a FIFO lock) runs at once for expressNs, at most once per
// expressMinIntervalNs, debited.
class ExpressPolicy : public Policy
{
public:
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource source, uint32_t waitsOn) override;
	void onTick(SchedCore &core) override;
	bool express(SchedCore &core, VcpuId target);
	void retryWaiters(SchedCore &core, int vm);
};

// Gang scheduling baseline: each quantum one VM's vCPUs are boosted and every other VM's are
// SCHED_IDLE; VMs take turns. Holes (pool CPUs the VM in turn cannot use) are counted.
class GangPolicy : public Policy
{
public:
	// Which VMs get a turn: every active one (the baseline), or only those with a vCPU ready
	// (adaptive's turns: a turn for a VM whose vCPUs all halt is nothing but a hole).
	enum class Rotation : uint8_t { EveryActiveVm, VmsWithAReadyVcpu };

	explicit GangPolicy(Rotation rotation = Rotation::EveryActiveVm) : rotation_(rotation) {}
	void onTick(SchedCore &core) override;
	int current() const { return current_; }

private:
	bool takesTurns(const SchedCore &core, int vm) const;

	Rotation rotation_;
	int current_ = -1;
	uint64_t turnEndsNs_ = 0;
	uint64_t lastTickNs_ = 0;
};

// Spindle's own. Per spin wait: a named vCPU (holder or next waiter) or a hinted, de-scheduled
// holder is answered with the VM's current response for named vCPUs (express it, or co-boost
// the siblings); a spin with nothing named is co-boosted with this VM's slice; VMs that do not
// spin get nothing (no extensions either). What it adapts from what it observes:
//  - the response for named vCPUs, per VM, from lock progress (hint seq advance per ms) in
//    epochs: each epoch uses the response with the better average so far, every
//    kExploreEvery-th epoch tries the other, so a host where short express windows cannot be
//    delivered in time (slow actuation) converges to co-boosting, and a fast host to express;
//  - the co-boost slice, per VM, from the share of rounds followed by progress.
// And when every VM that spins keeps at least as many vCPUs runnable as the pool has CPUs (and
// no VM is larger than the pool), VMs take turns on the pool as under gang: that removes holder
// and waiter preemption outright, and the spinning VMs leave no holes in their turns. A quiet VM
// may be smaller: the waiting VMs' SCHED_IDLE threads fill what its turn leaves, and a VM with
// nothing ready gets no turn. When a spinning VM stops filling the pool the turns end.
// Fairness is the share guard's job (core), which holds every policy here to each VM's share;
// turns are fair by rotation.
class AdaptivePolicy : public Policy
{
public:
	enum class Response : uint8_t { Express, Coboost };

	explicit AdaptivePolicy(const SchedulerOptions &options);
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource source, uint32_t waitsOn) override;
	void onHint(SchedCore &core, VcpuId who) override;
	void onTick(SchedCore &core) override;
	void onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool early) override;
	uint64_t sliceNs(int vm) const;
	Response response(int vm) const;

	// A VM counts as spinning if it reported a spin wait within this many ticks.
	static constexpr unsigned kSpinMemoryTicks = 20;
	// Rounds looked at before the slice is adapted.
	static constexpr unsigned kAdaptRounds = 8;
	// An epoch of the response choice, in ticks, and how often the other response is tried.
	static constexpr unsigned kEpochTicks = 20;
	static constexpr unsigned kExploreEvery = 4;
	// Ticks the turn condition must hold (or fail) before turns start (or end).
	static constexpr unsigned kTurnHysteresisTicks = 5;
	bool turnsActive() const { return turnsActive_; }

private:
	struct VmState {
		uint64_t sliceNs;
		unsigned rounds = 0;
		unsigned progressed = 0;
		Response response = Response::Express;
		uint64_t epochStartNs = 0;
		uint64_t progressAtEpoch = 0;
		unsigned epochs = 0;
		double rate[2] = { -1.0, -1.0 }; // average hint progress per ms under each response
	};
	VmState &state(int vm);
	bool vmSpinsRecently(const SchedCore &core, int vm) const;
	void endEpoch(SchedCore &core, int vm);
	void answerNamed(SchedCore &core, VcpuId spinner, uint32_t target);
	bool turnsWanted(const SchedCore &core) const;
	void updateTurns(SchedCore &core);
	void endTurns(SchedCore &core);

	const SchedulerOptions &options_;
	std::vector<VmState> vms_;
	CoboostPolicy coboost_;
	ExtendPolicy extend_;
	ExpressPolicy express_;
	GangPolicy gang_{ GangPolicy::Rotation::VmsWithAReadyVcpu };
	bool turnsActive_ = false;
	unsigned turnTicks_ = 0; // consecutive ticks the turn condition disagreed with turnsActive_
};

std::unique_ptr<Policy> makePolicy(const SchedulerOptions &options);

} // namespace spindle::sched

#pragma once

// Policies: each a small class that reads like the idea it implements, one file each under
// sched/policies/. The core calls them after it has applied an event to the model; they answer
// by calling the core's grant helpers, which enforce the ledger and the share guard, so no
// policy can boost a vCPU in debt by mistake. What a policy needs to remember beyond the shared
// model (intervals, per-hold flags, rounds) it keeps itself, in a PerVcpu or PerVm table.

#include <memory>
#include <vector>

#include "sched/model.h"
#include "sched/options.h"

namespace spindle::sched {

class SchedCore;

class Policy
{
public:
	virtual ~Policy() = default;
	// A spin wait was detected on `spinner`; waitsOn names the vCPU it waits on, if known.
	virtual void onSpin(SchedCore &, VcpuId /*spinner*/, SpinSource, uint32_t /*waitsOn*/) {}
	// The hint slot of `who` changed (already validated into the model). Slots are read every
	// tick, and the slots of extended vCPUs every extendPollNs between ticks.
	virtual void onHint(SchedCore &, VcpuId /*who*/) {}
	virtual void onTick(SchedCore &) {}
	virtual void onBoostEnded(SchedCore &, VcpuId /*who*/, BoostReason, bool /*early*/) {}
	// Whether ticks may slow down while no VM spins (SchedCore::quietTickAllowed): true for a
	// policy that only answers spin waits; one that acts on its own (turns, lock holds) says no.
	virtual bool allowsQuietTicks(const SchedCore &) const { return true; }
	// Whether a spin wait would get an answer now. One that gets none (cfs always, adaptive
	// while no vCPU waits for a CPU) needs no fast tick to answer it and no wake-up per
	// long-spin report: its ticks only count. Asked after every event.
	virtual bool answersSpins(const SchedCore &) const { return true; }
	// While the policy runs turns (gang, adaptive's): when the current turn ends, else 0. The
	// scheduler then ticks at each turn's end and not in between: what a turn needs from the
	// scheduler is its end, and a 1 ms tick through 10 ms turns cost 5-7% of a CPU.
	virtual uint64_t turnEndsNs(const SchedCore &) const { return 0; }
};

// A policy's own state per vCPU. The core adds VMs after it made the policy, so entries appear
// (value-initialized) on first use; a read of one never used sees the initial value.
template <typename T>
class PerVcpu
{
public:
	T &operator[](VcpuId id)
	{
		const auto vm = static_cast<size_t>(id.vm);
		if (rows_.size() <= vm)
			rows_.resize(vm + 1);
		if (rows_[vm].size() <= id.vcpu)
			rows_[vm].resize(id.vcpu + 1);
		return rows_[vm][id.vcpu];
	}

private:
	std::vector<std::vector<T>> rows_;
};

// The same per VM.
template <typename T>
class PerVm
{
public:
	T &operator[](int vm)
	{
		if (rows_.size() <= static_cast<size_t>(vm))
			rows_.resize(static_cast<size_t>(vm) + 1);
		return rows_[static_cast<size_t>(vm)];
	}
	T get(int vm) const
	{
		return static_cast<size_t>(vm) < rows_.size() ? rows_[static_cast<size_t>(vm)] : T{};
	}

private:
	std::vector<T> rows_;
};

std::unique_ptr<Policy> makePolicy(const SchedulerOptions &options);

} // namespace spindle::sched

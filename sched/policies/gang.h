#pragma once

#include "sched/policy.h"

namespace spindle::sched {

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
	bool allowsQuietTicks(const SchedCore &) const override { return false; } // turns every quantum

	// Turns stop for a while (adaptive between phases): the turn in progress is over, but whose
	// it was is kept, so the next phase starts with the VM after it. Starting again from the
	// first VM favoured the first VMs whenever phases were short (measured: a cpu-bound
	// co-runner, the last VM, kept 0.68-0.85 of its share at 4x under adaptive).
	void pause();

private:
	bool takesTurns(const SchedCore &core, int vm) const;

	Rotation rotation_;
	int current_ = -1;
	uint64_t turnEndsNs_ = 0;
	uint64_t lastTickNs_ = 0;
};

} // namespace spindle::sched

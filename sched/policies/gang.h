#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Gang scheduling baseline: each quantum one VM's vCPUs are boosted and every other VM's are
// SCHED_IDLE; VMs take turns. Holes (pool CPUs the VM in turn cannot use) are counted.
class GangPolicy : public Policy
{
public:
	void onTick(SchedCore &core) override;
	bool allowsQuietTicks(const SchedCore &) const override { return false; } // turns every quantum

	// A turn's grants (boosts, SCHED_IDLE) last this many ticks past the quantum. The tick that
	// starts the next turn replaces them, so there is no moment when it is nobody's turn; the
	// margin only bounds a turn whose scheduler thread is starved. With grants of exactly the
	// quantum the expiry timer ended them before that tick came: on the PVM host 0.5-2 ms of
	// every 11 ms turn ran under plain CFS, 7% of a 1 s run with no VM co-scheduled.
	static constexpr unsigned kTurnOverlapTicks = 2;

private:
	int current_ = -1;
	uint64_t turnEndsNs_ = 0;
	uint64_t lastTickNs_ = 0;
};

} // namespace spindle::sched

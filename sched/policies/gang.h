#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Where a VM's vCPUs are for a turn (gang's and adaptive's): its own turn runs them above every
// other thread, not debited (a turn is the VM's entitlement, not a favour); a shared one under
// plain CFS; out of turn SCHED_IDLE. Every earlier boost ends. The grants last grantNs, and the
// next turn's tick replaces them.
enum class TurnPlace : uint8_t { Own, Shared, Out };
void placeForTurn(SchedCore &core, int vm, TurnPlace place, uint64_t grantNs);

// Gang scheduling baseline: each quantum one VM's vCPUs are boosted and every other VM's are
// SCHED_IDLE; VMs take turns. Holes (pool CPUs the VM in turn cannot use) are counted.
class GangPolicy : public Policy
{
public:
	void onTick(SchedCore &core) override;
	bool allowsQuietTicks(const SchedCore &) const override { return false; } // turns every quantum
	bool answersSpins(const SchedCore &) const override { return false; }    // turns are its answer
	uint64_t turnEndsNs(const SchedCore &) const override { return current_ >= 0 ? turnEndsNs_ : 0; }

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

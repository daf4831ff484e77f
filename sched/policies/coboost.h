#pragma once

#include "sched/policy.h"

namespace spindle::sched {

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

	// Boosts of the VM's current round still running.
	unsigned inFlight(int vm) const { return rounds_.get(vm).outstanding; }
	// Whether no spin wait was reported in the VM since its last round started.
	bool quietSinceRound(const SchedCore &core, int vm) const;

private:
	struct Round {
		unsigned outstanding = 0;
		uint64_t spinsAtStart = 0; // the VM's spinsTotal when the round started
	};
	PerVm<Round> rounds_;
};

} // namespace spindle::sched

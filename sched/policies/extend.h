#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Patent, time-slice extension: a running vCPU whose hint says it holds a lock is boosted so the
// host does not preempt it inside the critical section: at most extendMaxNs, one extension per
// lock hold, extendMaxPerWindow per window, debited, ended as soon as the hint says released.
// The release is noticed at the next read of the slot: every tick, and every extendPollNs while
// an extension runs (the core polls extended vCPUs' slots between ticks).
class ExtendPolicy : public Policy
{
public:
	void onHint(SchedCore &core, VcpuId who) override;
	void onTick(SchedCore &core) override;
	// Holds are extended whether or not anyone spins, so every tick looks for them.
	bool allowsQuietTicks(const SchedCore &) const override { return false; }
	bool tryExtend(SchedCore &core, VcpuId who);

	// Every hint has to pass through here, whatever else the caller does with it: a release ends
	// the hold, and with it the "one extension per lock hold" refusal.
	void trackHold(const SchedCore &core, VcpuId who);
	// A release ends a running extension, a hold is extended (onHint without trackHold).
	void answerHint(SchedCore &core, VcpuId who);

private:
	struct Holder {
		uint64_t windowStartNs = 0;
		uint32_t inWindow = 0;         // extensions granted in the current window
		bool extendedThisHold = false; // one extension per lock hold (per hint seq run)
	};
	PerVcpu<Holder> holders_;
};

} // namespace spindle::sched

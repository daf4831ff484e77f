#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Stock Xen on a PLE exit: the spinner steps aside. One thread cannot make another call
// sched_yield(), so the runnable vCPUs stacked on the spinner's CPU are boosted for yieldNs
// instead (the spinner's donation, not debited), at most once per yieldMinIntervalNs per
// spinner, which is the bound that keeps it from starving itself.
class YieldPolicy : public Policy
{
public:
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t) override;

private:
	struct Spinner {
		bool yielded = false;
		uint64_t lastYieldNs = 0;
	};
	PerVcpu<Spinner> spinners_;
};

} // namespace spindle::sched

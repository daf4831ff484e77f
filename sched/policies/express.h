#pragma once

#include "sched/policy.h"

namespace spindle::sched {

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

private:
	struct Target {
		bool expressed = false;
		uint64_t lastExpressNs = 0;
	};
	PerVcpu<Target> targets_;
};

} // namespace spindle::sched

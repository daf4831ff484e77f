#include "sched/policies/express.h"

#include "sched/core.h"

namespace spindle::sched {

bool ExpressPolicy::express(SchedCore &core, VcpuId target)
{
	VcpuModel &v = core.vcpu(target);
	// Only a de-scheduled vCPU needs express scheduling; a halted one holds no spinlock.
	if (v.state != VcpuState::Runnable || v.boosted)
		return false;
	Target &e = targets_[target];
	uint64_t t = core.now();
	if (e.expressed && t - e.lastExpressNs < core.options().expressMinIntervalNs) {
		core.countDenied(target, "express_interval");
		return false;
	}
	if (!core.grantBoost(target, core.options().expressNs, BoostReason::Express, true))
		return false;
	e.expressed = true;
	e.lastExpressNs = t;
	v.counters.expressRuns++;
	return true;
}

void ExpressPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t waitsOn)
{
	if (waitsOn == kNoVcpu)
		return;
	express(core, { spinner.vm, waitsOn });
}

void ExpressPolicy::retryWaiters(SchedCore &core, int vm)
{
	// A waiter whose hint still names a de-scheduled vCPU: the first attempt may have been
	// refused by a bound that has passed since.
	VmModel &m = core.vm(vm);
	if (!m.active)
		return;
	for (const VcpuModel &v : m.vcpus)
		if (v.waitingOn != kNoVcpu && m.vcpus[v.waitingOn].state == VcpuState::Runnable &&
		    !m.vcpus[v.waitingOn].boosted)
			express(core, { vm, v.waitingOn });
}

void ExpressPolicy::onTick(SchedCore &core)
{
	for (size_t id = 0; id < core.vmCount(); ++id)
		retryWaiters(core, static_cast<int>(id));
}

} // namespace spindle::sched

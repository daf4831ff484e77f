#include "sched/policies/extend.h"

#include "sched/core.h"

namespace spindle::sched {

bool ExtendPolicy::tryExtend(SchedCore &core, VcpuId who)
{
	VcpuModel &v = core.vcpu(who);
	Holder &h = holders_[who];
	if (v.locksHeld == 0 || h.extendedThisHold || v.boosted || v.state != VcpuState::Running)
		return false;
	const SchedulerOptions &o = core.options();
	uint64_t t = core.now();
	if (t - h.windowStartNs >= o.extendWindowNs) {
		h.windowStartNs = t;
		h.inWindow = 0;
	}
	if (h.inWindow >= o.extendMaxPerWindow) {
		core.countDenied(who, "extend_count");
		h.extendedThisHold = true; // do not ask again for this hold
		return false;
	}
	if (!core.grantBoost(who, o.extendMaxNs, BoostReason::Extend, true))
		return false;
	h.inWindow++;
	h.extendedThisHold = true;
	v.counters.extensionsGranted++;
	return true;
}

void ExtendPolicy::trackHold(const SchedCore &core, VcpuId who)
{
	if (core.vcpu(who).locksHeld == 0)
		holders_[who].extendedThisHold = false;
}

void ExtendPolicy::answerHint(SchedCore &core, VcpuId who)
{
	VcpuModel &v = core.vcpu(who);
	if (v.locksHeld == 0) {
		// Released: the extension has done its job, give the rest back.
		if (v.boosted && v.boostReason == BoostReason::Extend) {
			v.counters.extensionsEndedEarly++;
			core.endBoost(who, true);
			core.extensionEndedByRelease(who);
		}
		return;
	}
	tryExtend(core, who);
}

void ExtendPolicy::onHint(SchedCore &core, VcpuId who)
{
	trackHold(core, who);
	answerHint(core, who);
}

void ExtendPolicy::onTick(SchedCore &core)
{
	// A holder that was runnable when its hint changed may be running now.
	for (size_t id = 0; id < core.vmCount(); ++id) {
		VmModel &m = core.vm(static_cast<int>(id));
		if (!m.active)
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i)
			if (m.vcpus[i].locksHeld > 0)
				tryExtend(core, { static_cast<int>(id), i });
	}
}

} // namespace spindle::sched

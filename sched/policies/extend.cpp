#include "sched/policies/extend.h"

#include "sched/core.h"

namespace spindle::sched {

namespace {

// A VM without a hint page says nothing of its locks; its RIP samples may still show a raised
// TPR (sched/sampling). That is a weaker hint: it gets half the extension.
bool sampledHolder(const SchedCore &core, VcpuId who)
{
	return !core.vm(who.vm).hints && core.vcpu(who).sampledHoldsLock;
}

} // namespace

bool ExtendPolicy::tryExtend(SchedCore &core, VcpuId who)
{
	VcpuModel &v = core.vcpu(who);
	Holder &h = holders_[who];
	const bool sampledOnly = v.locksHeld == 0 && sampledHolder(core, who);
	if ((v.locksHeld == 0 && !sampledOnly) || h.extendedThisHold || v.boosted || v.state != VcpuState::Running)
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
	if (!core.grantBoost(who, sampledOnly ? o.extendMaxNs / 2 : o.extendMaxNs, BoostReason::Extend, true))
		return false;
	h.inWindow++;
	h.extendedThisHold = true;
	v.counters.extensionsGranted++;
	return true;
}

void ExtendPolicy::trackHold(const SchedCore &core, VcpuId who)
{
	if (core.vcpu(who).locksHeld == 0 && !sampledHolder(core, who))
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
		for (unsigned i = 0; i < m.vcpus.size(); ++i) {
			const VcpuId who{ static_cast<int>(id), i };
			if (m.vcpus[i].locksHeld > 0 || sampledHolder(core, who))
				tryExtend(core, who);
			else
				trackHold(core, who); // a sampled hold that ended: the next one may be extended
		}
	}
}

} // namespace spindle::sched

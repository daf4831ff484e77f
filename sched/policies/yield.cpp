#include "sched/policies/yield.h"

#include "sched/core.h"

namespace spindle::sched {

// Stock Xen gives up the spinning vCPU's CPU on a PLE exit. One thread cannot make another one
// yield, and pushing the spinner into SCHED_IDLE backfires under CFS: what it still runs there is
// charged to its vruntime at weight 3 instead of 1024 (about 340x), so once "restored" CFS holds
// it back far longer than the yield lasted. That starved whole vCPUs for entire runs in the KVM
// suite. So the yield is done from the other side: the runnable vCPUs (of any VM) stacked on the
// spinner's CPU are boosted for yieldNs. The spinner's own vruntime is untouched, the time is the
// spinner's donation (not debited to the takers), and the interval bounds how often it donates.
void YieldPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t)
{
	VcpuModel &v = core.vcpu(spinner);
	Spinner &s = spinners_[spinner];
	const uint64_t t = core.now();
	if (s.yielded && t - s.lastYieldNs < core.options().yieldMinIntervalNs) {
		core.countDenied(spinner, "yield_interval");
		return;
	}
	unsigned takers = 0;
	for (size_t id = 0; id < core.vmCount(); ++id) {
		VmModel &m = core.vm(static_cast<int>(id));
		if (!m.active)
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i) {
			const VcpuId other{ static_cast<int>(id), i };
			const VcpuModel &o = m.vcpus[i];
			if (other == spinner || o.state != VcpuState::Runnable || o.boosted || o.cpu != v.cpu)
				continue;
			if (core.grantBoost(other, core.options().yieldNs, BoostReason::Yield, false))
				++takers;
		}
	}
	if (takers == 0) {
		core.traceEvent("yield_no_taker", spinner, "cpu", static_cast<uint64_t>(v.cpu));
		return;
	}
	s.yielded = true;
	s.lastYieldNs = t;
	v.counters.yields++;
}

} // namespace spindle::sched

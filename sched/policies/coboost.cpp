#include "sched/policies/coboost.h"

#include <algorithm>

#include "sched/core.h"

namespace spindle::sched {

void CoboostPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t)
{
	coboost(core, spinner, core.options().boostSliceNs);
}

unsigned CoboostPolicy::coboost(SchedCore &core, VcpuId spinner, uint64_t sliceNs)
{
	VmModel &m = core.vm(spinner.vm);
	Round &round = rounds_[spinner.vm];
	if (round.outstanding > 0) {
		m.counters.coboostsInFlight++;
		core.countDenied(spinner, "coboost_in_flight");
		return 0;
	}

	// CPUs on which a sibling runs now; a boosted sibling will run on its target, so targets
	// chosen in this round count as taken too.
	std::vector<int> busy;
	for (const VcpuModel &s : m.vcpus)
		if (s.state == VcpuState::Running && s.cpu >= 0)
			busy.push_back(s.cpu);
	auto isBusy = [&](int cpu) { return std::find(busy.begin(), busy.end(), cpu) != busy.end(); };

	unsigned boosted = 0;
	for (unsigned i = 0; i < m.vcpus.size(); ++i) {
		VcpuId sibling{ spinner.vm, i };
		VcpuModel &s = m.vcpus[i];
		// The spinner is not yielded, and running or halted siblings need no CPU from us.
		if (i == spinner.vcpu || s.state != VcpuState::Runnable || s.boosted)
			continue;
		int onCpu = -1;
		if (s.cpu >= 0 && isBusy(s.cpu)) {
			// Stacked behind a running sibling: boosting it in place would preempt that
			// sibling (possibly the holder). Boost it on a pool CPU that runs none.
			for (int cpu : core.poolCpus()) {
				if (!isBusy(cpu)) {
					onCpu = cpu;
					break;
				}
			}
		}
		if (core.grantBoost(sibling, sliceNs, BoostReason::Coboost, true, onCpu)) {
			if (s.cpu >= 0)
				busy.push_back(s.cpu);
			++boosted;
		}
	}
	if (boosted > 0) {
		round.outstanding = boosted;
		round.spinsAtStart = m.spinsTotal;
		m.counters.coboosts++;
	}
	return boosted;
}

void CoboostPolicy::onBoostEnded(SchedCore &, VcpuId who, BoostReason reason, bool)
{
	Round &round = rounds_[who.vm];
	if (reason == BoostReason::Coboost && round.outstanding > 0)
		--round.outstanding;
}

bool CoboostPolicy::quietSinceRound(const SchedCore &core, int vm) const
{
	return core.vm(vm).spinsTotal == rounds_.get(vm).spinsAtStart;
}

} // namespace spindle::sched

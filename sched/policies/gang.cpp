#include "sched/policies/gang.h"

#include "sched/core.h"

namespace spindle::sched {

void placeForTurn(SchedCore &core, int vm, TurnPlace place, uint64_t grantNs)
{
	VmModel &m = core.vm(vm);
	for (unsigned i = 0; i < m.vcpus.size(); ++i) {
		const VcpuId who{ vm, i };
		if (m.vcpus[i].boosted)
			core.endBoost(who, false);
		if (place == TurnPlace::Out) {
			core.deprioritize(who, grantNs);
			continue;
		}
		core.restorePriority(who);
		if (place == TurnPlace::Own)
			core.grantBoost(who, grantNs, BoostReason::Gang, false);
	}
}

void GangPolicy::onTick(SchedCore &core)
{
	uint64_t t = core.now();
	size_t pool = core.poolCpus().size();

	// Holes since the last tick: pool CPUs that the VM in turn had no runnable vCPU for.
	if (current_ >= 0 && lastTickNs_ != 0) {
		VmModel &m = core.vm(current_);
		size_t ready = m.readyVcpus(VmModel::Unobserved::Ready);
		if (ready < pool)
			m.counters.gangHoleCpuNs += (pool - ready) * (t - lastTickNs_);
	}
	lastTickNs_ = t;

	if (current_ >= 0 && t < turnEndsNs_ && core.vm(current_).active)
		return;

	// Next active VM in turn.
	int count = static_cast<int>(core.vmCount());
	int next = -1;
	for (int step = 1; step <= count; ++step) {
		int candidate = ((current_ < 0 ? -1 : current_) + step) % count;
		if (core.vm(candidate).active) { // every active VM, ready or not: the baseline
			next = candidate;
			break;
		}
	}
	if (next < 0)
		return;

	const uint64_t quantum = core.options().gangQuantumNs;
	const uint64_t grantNs = quantum + kTurnOverlapTicks * core.options().tickNs;
	for (int id = 0; id < count; ++id)
		if (core.vm(id).active)
			placeForTurn(core, id, id == next ? TurnPlace::Own : TurnPlace::Out, grantNs);
	current_ = next;
	turnEndsNs_ = t + quantum;
	core.vm(next).counters.gangTurns++;
	core.traceEvent("gang_turn", { next, 0 }, core.vm(next).name.c_str(), quantum);
}

} // namespace spindle::sched

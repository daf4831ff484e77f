#include "sched/policies/spin_turns.h"

#include <algorithm>

#include "sched/core.h"
#include "sched/policies/gang.h"

namespace spindle::sched {

bool SpinTurns::spins(const std::vector<bool> &spinning, int vm)
{
	return static_cast<size_t>(vm) < spinning.size() && spinning[static_cast<size_t>(vm)];
}

void SpinTurns::pause()
{
	current_ = kNobody;
	turnEndsNs_ = 0;
	lastTickNs_ = 0; // no holes are counted while there are no turns
}

bool SpinTurns::wantsOwnTurn(const SchedCore &core, int vm)
{
	const VmModel &m = core.vm(vm);
	if (m.readyVcpus() > 0)
		return true;
	for (const VcpuModel &v : m.vcpus)
		if (!v.observed || core.now() - v.stateSinceNs < core.options().gangQuantumNs)
			return true;
	return false;
}

int SpinTurns::nextTurn(const SchedCore &core, const std::vector<bool> &spinning) const
{
	// Positions 0..count-1 are the VMs, count is the shared turn.
	const int count = static_cast<int>(core.vmCount());
	const int from = lastServed_ == kShared ? count : lastServed_;
	for (int step = 1; step <= count + 1; ++step) {
		const int at = (from + step + count + 1) % (count + 1);
		if (at == count) {
			for (int id = 0; id < count; ++id)
				if (core.vm(id).active && !spins(spinning, id) && core.vm(id).readyVcpus() > 0)
					return kShared;
			continue;
		}
		if (core.vm(at).active && spins(spinning, at) && wantsOwnTurn(core, at))
			return at;
	}
	return kNobody;
}

void SpinTurns::countHoles(SchedCore &core, const std::vector<bool> &spinning, uint64_t nowNs)
{
	// Holes of a spinning VM's own turn only: in the shared turn CFS hands a CPU nobody sharing
	// wants to a spinning VM's SCHED_IDLE thread.
	if (current_ >= 0 && lastTickNs_ != 0 && spins(spinning, current_)) {
		VmModel &m = core.vm(current_);
		const size_t pool = core.poolCpus().size(), ready = m.readyVcpus();
		if (ready < pool)
			m.counters.gangHoleCpuNs += (pool - ready) * (nowNs - lastTickNs_);
	}
	lastTickNs_ = nowNs;
}

void SpinTurns::onTick(SchedCore &core, const std::vector<bool> &spinning)
{
	const uint64_t t = core.now();
	countHoles(core, spinning, t);
	const bool ownTurnGoesOn = current_ >= 0 && core.vm(current_).active && spins(spinning, current_);
	if ((ownTurnGoesOn || current_ == kShared) && t < turnEndsNs_)
		return;

	const int next = nextTurn(core, spinning);
	if (next == kNobody)
		return;
	const size_t pool = core.poolCpus().size();
	const uint64_t quantum = core.options().gangQuantumNs;
	uint64_t turnNs = quantum;
	if (next == kShared) {
		size_t ready = 0;
		for (size_t id = 0; id < core.vmCount(); ++id)
			if (core.vm(static_cast<int>(id)).active && !spins(spinning, static_cast<int>(id)))
				ready += core.vm(static_cast<int>(id)).readyVcpus();
		turnNs = std::max<uint64_t>(quantum * ready / pool, core.options().tickNs);
	}
	// As under gang: the next turn's tick replaces these grants, the margin bounds a turn whose
	// scheduler thread is starved.
	const uint64_t grantNs = turnNs + GangPolicy::kTurnOverlapTicks * core.options().tickNs;
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const int vm = static_cast<int>(id);
		VmModel &m = core.vm(vm);
		if (!m.active)
			continue;
		const bool inTurn = next == vm || (next == kShared && !spins(spinning, vm));
		placeForTurn(core, vm, !inTurn ? TurnPlace::Out : next == vm ? TurnPlace::Own : TurnPlace::Shared, grantNs);
		if (next == vm || (inTurn && m.readyVcpus() > 0))
			m.counters.gangTurns++;
	}
	current_ = lastServed_ = next;
	turnEndsNs_ = t + turnNs;
	core.traceEvent("gang_turn", { std::max(next, 0), 0 }, next == kShared ? "shared" : core.vm(next).name.c_str(),
			turnNs);
}

} // namespace spindle::sched

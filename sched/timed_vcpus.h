#pragma once

// The vCPUs whose favour or disfavour has an end time (boosted or deprioritized), kept apart so
// the work done after every event (expiry, the next expiry, the boost count, the extension poll)
// looks at the few that have one instead of every vCPU of every VM: at 512 vCPUs that scan was
// most of a spin event's decision cost (BENCHMARKS.md, "The scheduler's own cost"). At most a
// few per pool CPU are in it while spins are answered; a turn's placement can put every vCPU in it.

#include <algorithm>
#include <vector>

#include "sched/model.h"

namespace spindle::sched {

class TimedVcpus
{
public:
	// Brings the set in line with whether `who` has an end time now.
	void update(VcpuId who, bool timed)
	{
		auto it = std::lower_bound(ids_.begin(), ids_.end(), who, before);
		const bool held = it != ids_.end() && *it == who;
		if (timed && !held)
			ids_.insert(it, who);
		else if (!timed && held)
			ids_.erase(it);
	}

	// In VM, then vCPU order: the order a scan of every vCPU had, so actions keep it.
	const std::vector<VcpuId> &ids() const { return ids_; }
	bool empty() const { return ids_.empty(); }

private:
	static bool before(VcpuId a, VcpuId b) { return a.vm != b.vm ? a.vm < b.vm : a.vcpu < b.vcpu; }

	// Sorted: a turn's placement deprioritizes every other VM's vCPUs, so the set can hold all
	// of them, and a sorted vector keeps both update and the in-order walk cheap then (a turn
	// inserts in order, at the end).
	std::vector<VcpuId> ids_;
};

} // namespace spindle::sched

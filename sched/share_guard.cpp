#include "sched/share_guard.h"

#include <algorithm>

namespace spindle::sched {

void fairEntitlements(const std::vector<ShareClaim> &claims, uint64_t capacityNs,
		      std::vector<uint64_t> &entitledNs, std::vector<size_t> &order)
{
	uint64_t weightLeft = 0;
	order.clear();
	for (size_t i = 0; i < claims.size(); ++i) {
		order.push_back(i);
		weightLeft += claims[i].weight;
	}
	entitledNs.assign(claims.size(), 0);
	std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
		return static_cast<double>(claims[a].demandNs) / static_cast<double>(claims[a].weight) <
		       static_cast<double>(claims[b].demandNs) / static_cast<double>(claims[b].weight);
	});
	uint64_t left = capacityNs;
	for (size_t i : order) {
		const uint64_t weight = claims[i].weight;
		uint64_t fair = static_cast<uint64_t>(static_cast<double>(left) * static_cast<double>(weight) /
						      static_cast<double>(weightLeft));
		entitledNs[i] = std::min(claims[i].demandNs, fair);
		left -= std::min(left, entitledNs[i]);
		weightLeft -= weight;
	}
}

ShareGuard::ShareGuard(const SchedulerOptions &options, size_t poolCpus)
	: options_(options), poolCpus_(poolCpus)
{
}

const std::vector<int> &ShareGuard::update(std::vector<VmModel> &vms, uint64_t elapsedNs, uint64_t nowNs)
{
	changed_.clear();
	active_.clear();
	uint64_t totalWeight = 0;
	for (size_t id = 0; id < vms.size(); ++id)
		if (vms[id].active) {
			active_.push_back(id);
			totalWeight += vms[id].vcpus.size();
		}
	if (elapsedNs == 0 || active_.empty()) {
		for (VmModel &m : vms)
			m.tickCpuNs = 0;
		return changed_;
	}

	// A VM's weight is its vCPU count, which is what stock CFS gives it when all its vCPUs want
	// to run (one thread, one share); it may claim no more than its vCPUs could use (the ones
	// ready, or what they did use), and what it leaves goes to the others. So a VM that leaves
	// CPU idle is not owed it later, and a co-runner that takes up that slack is not over its
	// share. What is split is what the VMs got together this tick.
	claims_.clear();
	uint64_t capacity = 0;
	for (size_t id : active_) {
		const VmModel &m = vms[id];
		claims_.push_back({ m.vcpus.size(), std::max(m.readyVcpus() * elapsedNs, m.tickCpuNs) });
		capacity += m.tickCpuNs;
	}
	fairEntitlements(claims_, capacity, entitled_, order_);

	const bool guarded = policyIsShareGuarded(options_.policy);
	const double decay = static_cast<double>(options_.shareWindowNs) /
			     static_cast<double>(options_.shareWindowNs + elapsedNs);
	const double poolWindow = static_cast<double>(options_.shareWindowNs) *
				  static_cast<double>(std::max<size_t>(poolCpus_, 1));
	for (size_t k = 0; k < active_.size(); ++k) {
		VmModel &m = vms[active_[k]];
		// Tolerated excess: shareSlackPercent of what its weight entitles it to over a window.
		const double slack = poolWindow * static_cast<double>(m.vcpus.size()) /
				     static_cast<double>(totalWeight) * options_.shareSlackPercent / 100.0;
		m.shareBalanceNs = m.shareBalanceNs * decay + static_cast<double>(entitled_[k]) -
				   static_cast<double>(m.tickCpuNs);
		m.tickCpuNs = 0;
		if (!guarded)
			continue;
		// Only a VM that got debited favours within the window is held: natural CFS swings
		// (a slice is several ms) put any VM briefly ahead, and holding an innocent co-runner
		// for them costs it exactly what the guard is meant to protect.
		const bool favoured = m.debitedEver && nowNs - m.lastDebitedNs <= options_.shareWindowNs;
		const bool was = m.overShare;
		if (!m.overShare && favoured && m.shareBalanceNs < -slack)
			m.overShare = true;
		else if (m.overShare && m.shareBalanceNs >= 0)
			m.overShare = false;
		if (m.overShare)
			m.counters.shareHeldNs += elapsedNs;
		if (m.overShare == was)
			continue;
		if (m.overShare)
			m.counters.shareHolds++;
		changed_.push_back(static_cast<int>(active_[k]));
	}
	return changed_;
}

} // namespace spindle::sched

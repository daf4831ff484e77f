#pragma once

// The share guard, the closed loop over the ledger (ledger.h): debts are bookkeeping, the guard
// checks the outcome. Each tick the CPU time the VMs' threads really consumed is split among
// them by weighted max-min fairness, and each VM keeps a balance, entitled minus used, decayed
// over the share window. A VM that got debited favours and whose balance falls below minus the
// slack is held (no debited boosts, its running ones end, penalty nice) until the balance is
// back to zero. Only the policies that grant debited boosts are held; the baselines are measured
// as they are, but their balances are kept all the same.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sched/model.h"
#include "sched/options.h"

namespace spindle::sched {

struct ShareClaim {
	uint64_t weight = 0;   // what stock CFS gives the VM when all its threads want to run
	uint64_t demandNs = 0; // the most it could have used
};

// Splits capacityNs among the claims by weighted max-min fairness: smallest demand per unit of
// weight first, each takes min(demand, its weighted part of what is left), so what a modest
// claim does not need is shared by the rest. entitledNs[i] is claims[i]'s part; order is
// scratch (kept by the caller so a tick allocates nothing).
void fairEntitlements(const std::vector<ShareClaim> &claims, uint64_t capacityNs,
		      std::vector<uint64_t> &entitledNs, std::vector<size_t> &order);

class ShareGuard
{
public:
	ShareGuard(const SchedulerOptions &options, size_t poolCpus);

	// One tick over every VM: entitlements from the CPU time reported since the last tick
	// (VmModel::tickCpuNs, consumed here), balances, holds and releases, and the VMs' hold
	// counters. Returns the VMs whose hold changed, in id order: the caller ends a newly held
	// VM's favours and updates its vCPUs' penalties.
	const std::vector<int> &update(std::vector<VmModel> &vms, uint64_t elapsedNs, uint64_t nowNs);

private:
	const SchedulerOptions &options_;
	const size_t poolCpus_;
	// Working arrays, kept so a tick allocates nothing.
	std::vector<size_t> active_, order_;
	std::vector<ShareClaim> claims_;
	std::vector<uint64_t> entitled_;
	std::vector<int> changed_;
};

} // namespace spindle::sched

#pragma once

// The per-vCPU fairness ledger (the patent's "debited from later slices"), open loop: a debited
// boost is charged its whole budget when it is granted, an early end credits the unused part
// back, a boost the host measured outliving its budget is charged the overrun too, and debt is
// repaid at repayPercent of wall time spent unboosted. A vCPU in debt gets no debited boost and
// runs at +debtNice. The balance is in VcpuModel::debtNs; the closed loop on top of it is the
// share guard (share_guard.h).

#include <cstdint>

#include "sched/model.h"

namespace spindle::sched::ledger {

inline bool inDebt(const VcpuModel &v)
{
	return v.debtNs > 0;
}

// Charges a debited boost's budget up front, so a vCPU cannot collect a second boost before the
// first one is accounted for. Marks the VM favoured (the share guard holds only such VMs).
void debit(VmModel &vm, VcpuModel &v, uint64_t budgetNs, uint64_t nowNs);
// A debited boost that ended early gives back what it did not use.
void creditUnused(VcpuModel &v, uint64_t unusedNs);
// The last boost of v outlived its budget by extraNs (the host's unboost came late). Counted
// always, charged only if that boost was debited; returns whether the debt grew.
bool chargeOverrun(VmModel &vm, VcpuModel &v, uint64_t extraNs, uint64_t nowNs);

// What elapsedNs of wall time repays.
int64_t repayment(uint64_t elapsedNs, uint32_t repayPercent);
// Repays up to payNs of an unboosted vCPU's debt; returns false when it has none to repay (or is
// boosted), true when its penalty needs to be looked at again.
bool repay(VcpuModel &v, int64_t payNs);

// Whether v should run at the penalty nice: in debt, or its VM is over its share.
inline bool penaltyWanted(const VmModel &vm, const VcpuModel &v)
{
	return vm.active && (inDebt(v) || vm.overShare);
}

} // namespace spindle::sched::ledger

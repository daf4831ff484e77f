#include "sched/ledger.h"

#include <algorithm>

namespace spindle::sched::ledger {

void debit(VmModel &vm, VcpuModel &v, uint64_t budgetNs, uint64_t nowNs)
{
	vm.debitedEver = true;
	vm.lastDebitedNs = nowNs;
	v.debtNs += static_cast<int64_t>(budgetNs);
	v.counters.debitedNs += budgetNs;
}

void creditUnused(VcpuModel &v, uint64_t unusedNs)
{
	v.debtNs -= static_cast<int64_t>(unusedNs);
	v.counters.debitedNs -= unusedNs;
}

bool chargeOverrun(VmModel &vm, VcpuModel &v, uint64_t extraNs, uint64_t nowNs)
{
	v.counters.overrunNs += extraNs;
	if (!v.boostDebited)
		return false;
	// A vCPU pays for what it really got, not for what was granted.
	v.debtNs += static_cast<int64_t>(extraNs);
	v.counters.debitedNs += extraNs;
	vm.debitedEver = true;
	vm.lastDebitedNs = nowNs;
	return true;
}

int64_t repayment(uint64_t elapsedNs, uint32_t repayPercent)
{
	// A vCPU in debt runs at debtNice; against one nice-0 competitor on its CPU, nice +5 gets
	// ~25% of the CPU instead of 50%, which is where the default repayPercent of 25 comes from:
	// the debt is considered repaid at that share of wall time spent unboosted.
	return static_cast<int64_t>(elapsedNs * repayPercent / 100);
}

bool repay(VcpuModel &v, int64_t payNs)
{
	if (v.boosted || v.debtNs <= 0)
		return false;
	int64_t paid = std::min(payNs, v.debtNs);
	v.debtNs -= paid;
	v.counters.repaidNs += static_cast<uint64_t>(paid);
	return true;
}

} // namespace spindle::sched::ledger

// The share guard: a closed-loop ledger of each VM's measured CPU time against its weighted fair
// share, and the host-measured overrun of boosts charged to the ledger.

#include <gtest/gtest.h>

#include <vector>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

// Reports one tick's CPU time per VM (spread over its vCPUs) and ticks.
void tickWithCpu(Harness &h, uint64_t elapsedNs, const std::vector<std::pair<int, uint64_t>> &vmCpuNs)
{
	h.clock.advance(elapsedNs);
	for (auto [vm, ns] : vmCpuNs) {
		unsigned n = static_cast<unsigned>(h.core.vm(vm).vcpus.size());
		for (unsigned i = 0; i < n; ++i)
			h.core.cpuTime({ vm, i }, ns / n);
	}
	h.core.tick();
}

// The last nice a SetNice action gave `who`, or -1 without one.
int lastNice(const std::vector<Action> &actions, VcpuId who)
{
	int nice = -1;
	for (const Action &a : actions)
		if (a.kind == ActionKind::SetNice && a.who == who)
			nice = a.nice;
	return nice;
}

struct TwoVms {
	// favoured: `greedy` got a (tiny) debited boost, so its excess may be the policy's doing.
	explicit TwoVms(PolicyKind policy, bool favoured = true) : h(withPolicy(policy))
	{
		greedy = h.core.addVm("greedy", 2, nullptr);
		other = h.core.addVm("other", 2, nullptr);
		h.setStates(greedy, { S::Running, S::Runnable }, { 0, 1 });
		h.setStates(other, { S::Runnable, S::Running }, { 0, 1 });
		h.core.tick(); // first tick: nothing elapsed
		if (favoured) {
			h.core.grantBoost({ greedy, 1 }, 10 * kUs, BoostReason::Express, true);
			h.clock.advance(10 * kUs);
			h.core.expire();
		}
		h.take();
	}
	// Ticks of 1 ms on 2 CPUs where `greedy` gets `greedyPercent` of the pool.
	void run(unsigned ticks, unsigned greedyPercent)
	{
		for (unsigned t = 0; t < ticks; ++t)
			tickWithCpu(h, kMs, { { greedy, 2 * kMs * greedyPercent / 100 },
					      { other, 2 * kMs * (100 - greedyPercent) / 100 } });
	}
	Harness h;
	int greedy = -1;
	int other = -1;
};

TEST(ShareGuard, VmOverItsShareIsHeldBackWithThePenaltyNice)
{
	TwoVms s(PolicyKind::Adaptive);

	s.run(20, 75); // 25% of the pool beyond its half: 0.5 ms per tick

	EXPECT_TRUE(s.h.core.vm(s.greedy).overShare);
	auto actions = s.h.take();
	for (unsigned i = 0; i < 2; ++i)
		EXPECT_EQ(lastNice(actions, { s.greedy, i }), s.h.core.options().debtNice) << "vCPU " << i;
	EXPECT_EQ(s.h.core.vm(s.greedy).counters.shareHolds, 1u);
}

TEST(ShareGuard, VmAheadWithoutDebitedBoostsIsNotHeld)
{
	TwoVms s(PolicyKind::Adaptive, false);

	s.run(20, 75); // CFS put it ahead; no favour of ours did

	EXPECT_FALSE(s.h.core.vm(s.greedy).overShare);
	EXPECT_LT(s.h.core.vm(s.greedy).shareBalanceNs, 0.0);
}

TEST(ShareGuard, VcpusWithoutAThreadYetClaimNoShare)
{
	Harness h(withPolicy(PolicyKind::Adaptive));
	int early = h.core.addVm("early", 2, nullptr);
	int late = h.core.addVm("late", 2, nullptr); // its threads are not running yet
	h.setStates(early, { S::Running, S::Running }, { 0, 1 });
	h.core.tick();

	for (unsigned t = 0; t < 20; ++t)
		tickWithCpu(h, kMs, { { early, 2 * kMs } });

	EXPECT_NEAR(h.core.vm(early).shareBalanceNs, 0.0, 1.0);
	EXPECT_NEAR(h.core.vm(late).shareBalanceNs, 0.0, 1.0);
}

TEST(ShareGuard, VmUnderItsShareIsNotHeldBack)
{
	TwoVms s(PolicyKind::Adaptive);

	s.run(20, 75);

	EXPECT_FALSE(s.h.core.vm(s.other).overShare);
	EXPECT_EQ(Harness::count(s.h.take(), ActionKind::SetNice, { s.other, 0 }), 0u);
}

TEST(ShareGuard, ExcessWithinTheSlackIsTolerated)
{
	TwoVms s(PolicyKind::Adaptive); // slack 5% of a 100 ms window's share: 5 ms

	s.run(8, 75); // 4 ms beyond its share

	EXPECT_FALSE(s.h.core.vm(s.greedy).overShare);
}

TEST(ShareGuard, HeldVmGetsNoDebitedBoost)
{
	TwoVms s(PolicyKind::Adaptive);
	s.run(20, 75);

	bool granted = s.h.core.grantBoost({ s.greedy, 1 }, kMs, BoostReason::Express, true);

	EXPECT_FALSE(granted);
	EXPECT_EQ(s.h.core.vcpu({ s.greedy, 1 }).counters.deniedShare, 1u);
}

TEST(ShareGuard, HoldingAVmEndsItsDebitedBoostsEarly)
{
	TwoVms s(PolicyKind::Adaptive);
	ASSERT_TRUE(s.h.core.grantBoost({ s.greedy, 0 }, 100 * kMs, BoostReason::Coboost, true));

	s.run(20, 75);

	EXPECT_FALSE(s.h.core.vcpu({ s.greedy, 0 }).boosted);
	EXPECT_LT(s.h.core.vcpu({ s.greedy, 0 }).debtNs, static_cast<int64_t>(100 * kMs));
}

TEST(ShareGuard, HeldVmIsReleasedOnceItsBalanceRecovers)
{
	TwoVms s(PolicyKind::Adaptive);
	s.run(20, 75);
	ASSERT_TRUE(s.h.core.vm(s.greedy).overShare);
	s.h.take();

	s.run(20, 25);

	EXPECT_FALSE(s.h.core.vm(s.greedy).overShare);
	EXPECT_EQ(lastNice(s.h.take(), { s.greedy, 0 }), 0);
}

TEST(ShareGuard, BaselinePoliciesAreMeasuredButNotHeld)
{
	for (PolicyKind policy : { PolicyKind::Cfs, PolicyKind::Yield, PolicyKind::Gang }) {
		TwoVms s(policy);

		s.run(20, 75);

		EXPECT_FALSE(s.h.core.vm(s.greedy).overShare) << policyName(policy);
		EXPECT_LT(s.h.core.vm(s.greedy).shareBalanceNs, 0.0) << policyName(policy);
	}
}

TEST(ShareGuard, CoRunnerTakingCpuAnIdleVmLeftIsNotOverItsShare)
{
	TwoVms s(PolicyKind::Adaptive);
	s.h.setStates(s.greedy, { S::Halted, S::Halted }, { 0, 1 });

	s.run(50, 10); // the halted VM used 10%, the other took the 90% it left

	EXPECT_FALSE(s.h.core.vm(s.other).overShare);
	EXPECT_FALSE(s.h.core.vm(s.greedy).overShare);
}

TEST(ShareGuard, WeightIsTheVcpuCountAsUnderStockCfs)
{
	Harness h(withPolicy(PolicyKind::Adaptive));
	int big = h.core.addVm("big", 3, nullptr);
	int small = h.core.addVm("small", 1, nullptr);
	h.setStates(big, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 0 });
	h.setStates(small, { S::Runnable }, { 1 });
	h.core.tick();

	// 3 of 4 threads: CFS gives the 3-vCPU VM 75% of the pool, which is its share.
	for (unsigned t = 0; t < 50; ++t)
		tickWithCpu(h, kMs, { { big, 2 * kMs * 3 / 4 }, { small, 2 * kMs / 4 } });

	EXPECT_FALSE(h.core.vm(big).overShare);
	EXPECT_NEAR(h.core.vm(big).shareBalanceNs, 0.0, static_cast<double>(kMs));
}

// ---- Overruns ---------------------------------------------------------------------------------

TEST(Overrun, IsChargedToADebitedBoost)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, 50 * kUs, BoostReason::Express, true);
	h.clock.advance(50 * kUs);
	h.core.expire();

	h.core.chargeOverrun({ vm, 0 }, 3 * kMs);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, static_cast<int64_t>(50 * kUs + 3 * kMs));
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.overrunNs, 3 * kMs);
}

TEST(Overrun, OfAnUndebitedGangTurnIsCountedOnly)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Gang, false);
	h.clock.advance(kMs);
	h.core.expire();

	h.core.chargeOverrun({ vm, 0 }, 2 * kMs);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, 0);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.overrunNs, 2 * kMs);
}

// A host model for the flood: one CPU per pool entry, each tick a boosted vCPU on a CPU takes the
// whole tick (its unboost comes a tick late, as on a slow host), the others share the rest by
// CFS weight (nice 0: 1024, the penalty nice 5: 335).
struct FloodHost {
	explicit FloodHost(Harness &h) : h(h) {}
	void tick(uint64_t elapsedNs)
	{
		h.clock.advance(elapsedNs);
		for (int cpu : h.core.poolCpus()) {
			std::vector<VcpuId> here;
			for (size_t id = 0; id < h.core.vmCount(); ++id)
				for (unsigned i = 0; i < h.core.vm(static_cast<int>(id)).vcpus.size(); ++i)
					if (h.core.vcpu({ static_cast<int>(id), i }).homeCpu == cpu)
						here.push_back({ static_cast<int>(id), i });
			VcpuId boosted{ -1, 0 };
			for (VcpuId v : here)
				if (h.core.vcpu(v).boosted)
					boosted = v;
			double weights = 0;
			for (VcpuId v : here)
				weights += h.core.vcpu(v).penalized ? 335.0 : 1024.0;
			for (VcpuId v : here) {
				uint64_t got = boosted.vm >= 0
						       ? (v == boosted ? elapsedNs : 0)
						       : static_cast<uint64_t>(static_cast<double>(elapsedNs) *
									       (h.core.vcpu(v).penalized ? 335.0 : 1024.0) / weights);
				h.core.cpuTime(v, got);
				cpuNs[static_cast<size_t>(v.vm)] += got;
				h.core.vcpuState(v, v == boosted || (boosted.vm < 0 && v == here.front()) ? S::Running : S::Runnable, cpu);
			}
			if (boosted.vm >= 0) {
				// The host ends it only now: charge what it took beyond its budget.
				uint64_t budget = h.core.vcpu(boosted).boostBudgetNs;
				h.core.endBoost(boosted, false);
				if (elapsedNs > budget)
					h.core.chargeOverrun(boosted, elapsedNs - budget);
			}
		}
		h.core.tick();
	}
	Harness &h;
	std::vector<uint64_t> cpuNs = std::vector<uint64_t>(2, 0);
};

TEST(ShareGuard, NotificationFloodWithOverrunningBoostsLeavesTheCoRunnerItsShare)
{
	// A hostile guest names a de-scheduled sibling in a long-spin notification every tick for a
	// second, and every express boost it gets overruns its 50 us budget to a whole tick. The
	// co-runner (same vCPU count, so half the pool is its share) still gets its share, within
	// the slack.
	Harness h(withPolicy(PolicyKind::Express), { 0 });
	int hostile = h.core.addVm("hostile", 2, nullptr);
	int corunner = h.core.addVm("corunner", 2, nullptr);
	FloodHost host(h);
	const unsigned ticks = 1000;

	for (unsigned t = 0; t < ticks; ++t) {
		h.core.longSpin({ hostile, 0 }, 1, 7);
		h.core.longSpin({ hostile, 1 }, 0, 7);
		host.tick(kMs);
		h.take();
	}

	const double share = static_cast<double>(ticks * kMs) / 2;
	EXPECT_GE(static_cast<double>(host.cpuNs[static_cast<size_t>(corunner)]), share * 0.95);
	EXPECT_GT(h.core.vm(hostile).counters.shareHolds, 0u);
}

TEST(FairEntitlements, WhatAModestClaimLeavesGoesToTheOthers)
{
	std::vector<uint64_t> entitled;
	std::vector<size_t> order;

	fairEntitlements({ { 1, 100 }, { 1, 10 } }, 100, entitled, order);

	EXPECT_EQ(entitled, (std::vector<uint64_t>{ 90, 10 }));
}

TEST(FairEntitlements, ClaimsThatWantMoreThanThereIsSplitByWeight)
{
	std::vector<uint64_t> entitled;
	std::vector<size_t> order;

	fairEntitlements({ { 2, 1000 }, { 1, 1000 } }, 90, entitled, order);

	EXPECT_EQ(entitled, (std::vector<uint64_t>{ 60, 30 }));
}

} // namespace
} // namespace spindle::sched::test

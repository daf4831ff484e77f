// coboost: the spinner's runnable siblings are boosted for one slice, stacked ones moved.

#include <gtest/gtest.h>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

TEST(CoboostPolicy, RunnableSiblingsAreBoostedForOneSlice)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2, 3 });
	int vm = h.core.addVm("a", 4, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Running, S::Halted }, { 0, 1, 2, 3 });
	uint64_t t0 = h.clock.nowNs();

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost), 1u);
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 1 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->budgetNs, h.core.options().boostSliceNs);
	EXPECT_EQ(b->untilNs, t0 + h.core.options().boostSliceNs);
}

TEST(CoboostPolicy, SpinnerIsNeitherBoostedNorYielded)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Runnable, S::Runnable }, { 0, 1 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 0 }), 0u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { vm, 0 }), 0u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 1 }), 1u);
}

TEST(CoboostPolicy, StackedSiblingIsMovedToACpuRunningNoSibling)
{
	// Pool 0..2; vCPU 0 spins on CPU 0, vCPU 1 runs on CPU 1, vCPU 2 waits behind vCPU 1.
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Running, S::Runnable }, { 0, 1, 1 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	const Action *m = Harness::find(actions, ActionKind::Move, { vm, 2 });
	ASSERT_NE(m, nullptr);
	EXPECT_EQ(m->cpu, 2);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 2 }), 1u);
}

TEST(CoboostPolicy, SiblingNotStackedOnASiblingStaysWhereItIs)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1 });
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 1 }); // CPU 1 runs another VM

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Move), 0u);
}

TEST(CoboostPolicy, StackedSiblingWhoseBoostIsRefusedIsNotMoved)
{
	// Room for one boost: vCPU 1 gets it, vCPU 2 (stacked too) is refused and must stay put.
	SchedulerOptions options = withPolicy(PolicyKind::Coboost);
	options.maxConcurrentBoosts = 1;
	Harness h(options, { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 2 }), 0u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Move, { vm, 2 }), 0u);
}

TEST(CoboostPolicy, MovedSiblingIsPinnedHomeAgainWhenItsBoostEnds)
{
	// Pool 0..2; homes 0 and 1. vCPU 0 spins on CPU 1 with vCPU 1 stacked behind it there.
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2 });
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 1, 1 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	const std::vector<Action> first = h.take();
	const Action *away = Harness::find(first, ActionKind::Move, { vm, 1 });
	ASSERT_NE(away, nullptr);
	ASSERT_NE(away->cpu, 1);

	h.clock.advance(h.core.options().boostSliceNs + kMs);
	h.core.tick();

	auto actions = h.take();
	const Action *home = Harness::find(actions, ActionKind::Move, { vm, 1 });
	ASSERT_NE(home, nullptr);
	EXPECT_EQ(home->cpu, h.core.vcpu({ vm, 1 }).homeCpu);
	EXPECT_EQ(h.core.vcpu({ vm, 1 }).counters.movesHome, 1u);
}

TEST(CoboostPolicy, SiblingBoostedInPlaceIsNotMovedWhenItsBoostEnds)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1 });
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 1 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	ASSERT_EQ(Harness::count(h.take(), ActionKind::Boost, { vm, 1 }), 1u);

	h.clock.advance(h.core.options().boostSliceNs + kMs);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Move), 0u);
}

TEST(CoboostPolicy, TwoStackedSiblingsAreMovedToDifferentCpus)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	const Action *m1 = Harness::find(actions, ActionKind::Move, { vm, 1 });
	const Action *m2 = Harness::find(actions, ActionKind::Move, { vm, 2 });
	ASSERT_NE(m1, nullptr);
	ASSERT_NE(m2, nullptr);
	EXPECT_NE(m1->cpu, m2->cpu);
	EXPECT_NE(m1->cpu, 0);
	EXPECT_NE(m2->cpu, 0);
}

TEST(CoboostPolicy, OnlyOneRoundPerVmIsInFlight)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.take();
	h.core.vcpuState({ vm, 1 }, S::Running, 1);
	h.core.vcpuState({ vm, 2 }, S::Runnable, 2);

	h.core.endBoost({ vm, 1 }, true); // one of the two ends; the other is still in flight
	h.take();
	h.core.spinDetected({ vm, 1 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
	EXPECT_EQ(h.core.vm(vm).counters.coboostsInFlight, 1u);
}

TEST(CoboostPolicy, OtherVmsAreNotBlockedByARoundInFlight)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);
	h.setStates(a, { S::Running, S::Runnable }, { 0, 1 });
	h.setStates(b, { S::Running, S::Runnable }, { 1, 0 });
	h.core.spinDetected({ a, 0 }, SpinSource::Ple);

	h.core.spinDetected({ b, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost, { b, 1 }), 1u);
}

TEST(CoboostPolicy, NewRoundIsAllowedAfterTheSliceExpires)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 1 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.clock.advance(h.core.options().boostSliceNs);
	h.core.expire();
	h.take();

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	// Both siblings are in debt now, so the new round boosts nobody, but it was not refused
	// for being in flight.
	EXPECT_EQ(h.core.vm(vm).counters.coboostsInFlight, 0u);
	EXPECT_EQ(h.core.vcpu({ vm, 1 }).counters.deniedDebt, 1u);
}

TEST(CoboostPolicy, BoostExpiresAfterTheSlice)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.take();

	h.clock.advance(h.core.options().boostSliceNs - 1);
	h.core.expire();
	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost), 0u);

	h.clock.advance(1);
	h.core.expire();
	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost, { vm, 1 }), 1u);
}

TEST(CoboostPolicy, IndebtedSiblingIsSkipped)
{
	Harness h(withPolicy(PolicyKind::Coboost), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	h.core.grantBoost({ vm, 2 }, kMs, BoostReason::Express, true);
	h.clock.advance(kMs);
	h.core.expire();
	h.take();

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 1 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { vm, 2 }), 0u);
	EXPECT_EQ(h.core.vcpu({ vm, 2 }).counters.deniedDebt, 1u);
}

TEST(BoostCapacity, CoboostStopsAtTheCapAndCountsTheDenial)
{
	auto options = withPolicy(PolicyKind::Coboost);
	options.maxConcurrentBoosts = 1;
	Harness h(options, { 0 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { VcpuState::Running, VcpuState::Runnable, VcpuState::Runnable }, { 0, 0, 0 });
	h.take();

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 1u);
	EXPECT_EQ(h.core.boostedCount(), 1u);
	EXPECT_EQ(h.core.vcpu({ vm, 2 }).counters.deniedBounds + h.core.vcpu({ vm, 1 }).counters.deniedBounds, 1u);
}

} // namespace
} // namespace spindle::sched::test

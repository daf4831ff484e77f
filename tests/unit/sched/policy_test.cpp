#include <gtest/gtest.h>

#include "harness.h"
#include "spindle_abi.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

// ---- cfs -------------------------------------------------------------------------------------

TEST(CfsPolicy, SpinWaitIsCountedButNothingIsDone)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_TRUE(h.take().empty());
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.spins[0], 1u);
}

// ---- yield -----------------------------------------------------------------------------------

TEST(YieldPolicy, RunnableVcpusStackedOnTheSpinnersCpuAreBoostedForTheYieldTime)
{
	Harness h(withPolicy(PolicyKind::Yield), { 0 });
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 1, nullptr);
	h.setStates(a, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });
	h.setStates(b, { VcpuState::Runnable }, { 0 });
	h.take();
	uint64_t t0 = h.clock.nowNs();

	h.core.spinDetected({ a, 0 }, SpinSource::Ple);

	auto actions = h.take();
	const Action *sibling = Harness::find(actions, ActionKind::Boost, { a, 1 });
	const Action *other = Harness::find(actions, ActionKind::Boost, { b, 0 });
	ASSERT_NE(sibling, nullptr);
	ASSERT_NE(other, nullptr);
	EXPECT_EQ(sibling->untilNs, t0 + h.core.options().yieldNs);
	EXPECT_EQ(h.core.vcpu({ a, 0 }).counters.yields, 1u);
}

TEST(YieldPolicy, TheSpinnerItselfIsNeverTouched)
{
	Harness h(withPolicy(PolicyKind::Yield), { 0 });
	int a = h.core.addVm("a", 2, nullptr);
	h.setStates(a, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });
	h.take();

	h.core.spinDetected({ a, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { a, 0 }), 0u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize), 0u);
}

TEST(YieldPolicy, VcpusOnOtherCpusDoNotTakeTheYield)
{
	Harness h(withPolicy(PolicyKind::Yield), { 0, 1 });
	int a = h.core.addVm("a", 2, nullptr);
	h.setStates(a, { VcpuState::Running, VcpuState::Runnable }, { 0, 1 });
	h.take();

	h.core.spinDetected({ a, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
	EXPECT_EQ(h.core.vcpu({ a, 0 }).counters.yields, 0u);
}

TEST(YieldPolicy, TheYieldIsNotDebitedToItsTakers)
{
	Harness h(withPolicy(PolicyKind::Yield), { 0 });
	int a = h.core.addVm("a", 2, nullptr);
	h.setStates(a, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });
	h.take();

	h.core.spinDetected({ a, 0 }, SpinSource::Ple);
	h.clock.advance(h.core.options().yieldNs);
	h.core.expire();

	EXPECT_EQ(h.core.vcpu({ a, 1 }).debtNs, 0);
	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost, { a, 1 }), 1u);
}

TEST(YieldPolicy, SecondYieldWithinIntervalIsDenied)
{
	Harness h(withPolicy(PolicyKind::Yield), { 0 });
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.clock.advance(h.core.options().yieldNs);
	h.core.expire();
	h.take();

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.deniedBounds, 1u);
}

// ---- coboost ---------------------------------------------------------------------------------

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

// ---- extend ----------------------------------------------------------------------------------

TEST(ExtendPolicy, RunningHolderIsExtendedForAtMostExtendMax)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	uint64_t t0 = h.clock.nowNs();

	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);

	const std::vector<Action> actions = h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 0 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Extend);
	EXPECT_EQ(b->untilNs, t0 + h.core.options().extendMaxNs);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.extensionsGranted, 1u);
}

TEST(ExtendPolicy, NoExtensionWithoutAHolderHint)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.hintUpdate({ vm, 0 }, 1, 0, 1);
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
}

TEST(ExtendPolicy, ExtensionEndsEarlyWhenTheHintSaysReleased)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);
	h.take();

	h.clock.advance(100 * kUs);
	h.core.hintUpdate({ vm, 0 }, 2, 0, kNoVcpu);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost, { vm, 0 }), 1u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.extensionsEndedEarly, 1u);
}

spindle_hint_slot hintSlot(uint32_t seq, uint32_t locksHeld)
{
	spindle_hint_slot slot{};
	slot.seq = seq;
	slot.locks_held = locksHeld;
	slot.waiting_on = SPINDLE_VCPU_NONE;
	return slot;
}

// A VM with a hint page whose running vCPU 0 took a lock and was extended at a tick.
struct ExtendedHolder {
	ExtendedHolder() : h(withPolicy(PolicyKind::Extend)), slots(2, hintSlot(0, 0))
	{
		vm = h.core.addVm("a", 2, slots.data());
		h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
		slots[0] = hintSlot(1, 1);
		h.core.tick();
		h.take();
	}
	Harness h;
	std::vector<spindle_hint_slot> slots;
	int vm = -1;
};

TEST(ExtendPolicy, RunningExtensionIsPolledBeforeTheNextTick)
{
	ExtendedHolder e;
	ASSERT_TRUE(e.h.core.vcpu({ e.vm, 0 }).boosted);

	uint64_t next = e.h.core.nextExpiryNs();

	EXPECT_EQ(next, e.h.clock.nowNs() + e.h.core.options().extendPollNs);
}

TEST(ExtendPolicy, ReleaseSeenAtAPollEndsTheExtensionAndBoundsItsLateness)
{
	ExtendedHolder e;
	e.slots[0] = hintSlot(2, 0);

	e.h.clock.advance(e.h.core.options().extendPollNs);
	e.h.core.expire();

	EXPECT_EQ(Harness::count(e.h.take(), ActionKind::Unboost, { e.vm, 0 }), 1u);
	EXPECT_EQ(e.h.core.vcpu({ e.vm, 0 }).counters.extensionsEndedEarly, 1u);
	EXPECT_EQ(e.h.core.extensionEndLateMaxNs(), e.h.core.options().extendPollNs);
}

TEST(ExtendPolicy, ReleaseSeenAfterTheBudgetStillCountsAsEndedByTheRelease)
{
	ExtendedHolder e;
	e.slots[0] = hintSlot(2, 0);

	e.h.clock.advance(5 * e.h.core.options().extendMaxNs); // the scheduler woke late
	e.h.core.expire();

	EXPECT_EQ(e.h.core.vcpu({ e.vm, 0 }).counters.extensionsEndedEarly, 1u);
}

TEST(ExtendPolicy, NothingIsPolledWithoutARunningExtension)
{
	Harness h(withPolicy(PolicyKind::Extend));
	std::vector<spindle_hint_slot> slots(2, hintSlot(0, 0));
	h.core.addVm("a", 2, slots.data());
	h.core.tick();

	EXPECT_EQ(h.core.nextExpiryNs(), UINT64_MAX);
}

TEST(ExtendPolicy, ExtensionIsDebitedForTheTimeUsed)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);

	h.clock.advance(100 * kUs);
	h.core.hintUpdate({ vm, 0 }, 2, 0, kNoVcpu);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, static_cast<int64_t>(100 * kUs));
}

TEST(ExtendPolicy, OneExtensionPerLockHold)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);
	h.clock.advance(h.core.options().extendMaxNs);
	h.core.expire();
	h.clock.advance(10 * kMs); // repaid
	h.core.tick();
	h.core.tick();
	h.take();

	h.core.tick(); // still the same hold

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.extensionsGranted, 1u);
}

TEST(ExtendPolicy, ExtensionsAreCappedPerWindow)
{
	SchedulerOptions o = withPolicy(PolicyKind::Extend);
	o.extendMaxPerWindow = 2;
	o.extendWindowNs = 100 * kMs;
	o.repayPercent = 100;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.tick();
	uint32_t seq = 0;

	for (int hold = 0; hold < 3; ++hold) {
		h.core.hintUpdate({ vm, 0 }, ++seq, 1, kNoVcpu);
		h.clock.advance(100 * kUs);
		h.core.hintUpdate({ vm, 0 }, ++seq, 0, kNoVcpu);
		h.clock.advance(kMs); // repay the 100 us at 100%
		h.core.tick();
	}

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.extensionsGranted, 2u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.deniedBounds, 1u);
}

TEST(ExtendPolicy, CountResetsInTheNextWindow)
{
	SchedulerOptions o = withPolicy(PolicyKind::Extend);
	o.extendMaxPerWindow = 1;
	o.extendWindowNs = 10 * kMs;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.tick();
	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);
	h.clock.advance(100 * kUs);
	h.core.hintUpdate({ vm, 0 }, 2, 0, kNoVcpu);

	h.clock.advance(10 * kMs);
	h.core.tick();
	h.core.hintUpdate({ vm, 0 }, 3, 1, kNoVcpu);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.extensionsGranted, 2u);
}

TEST(ExtendPolicy, RunnableHolderIsExtendedOnceItRuns)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Runnable, S::Running }, { 0, 0 });
	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);
	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);

	h.core.vcpuState({ vm, 0 }, S::Running, 0);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost, { vm, 0 }), 1u);
}

// ---- express ---------------------------------------------------------------------------------

TEST(ExpressPolicy, NamedDescheduledVcpuRunsForTheExpressWindow)
{
	Harness h(withPolicy(PolicyKind::Express), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	uint64_t t0 = h.clock.nowNs();

	h.core.longSpin({ vm, 0 }, 2, 9);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost), 1u);
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 2 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Express);
	EXPECT_EQ(b->untilNs, t0 + h.core.options().expressNs);
	EXPECT_EQ(h.core.vcpu({ vm, 2 }).counters.expressRuns, 1u);
}

TEST(ExpressPolicy, RunningTargetIsLeftAlone)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Running }, { 0, 1 });

	h.core.longSpin({ vm, 0 }, 1, 9);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
}

TEST(ExpressPolicy, UnnamedSpinExpressesNobody)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
}

TEST(ExpressPolicy, FrequencyIsBoundedPerTarget)
{
	SchedulerOptions o = withPolicy(PolicyKind::Express);
	o.repayPercent = 100;
	o.expressMinIntervalNs = 5 * kMs;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	h.core.tick();
	h.core.longSpin({ vm, 0 }, 1, 9);
	h.clock.advance(kMs); // expired and repaid, but within the interval
	h.core.tick();
	h.take();

	h.core.longSpin({ vm, 0 }, 1, 9);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
	EXPECT_EQ(h.core.vcpu({ vm, 1 }).counters.deniedBounds, 1u);
}

TEST(ExpressPolicy, ExpressRunIsDebitedToTheTarget)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.longSpin({ vm, 0 }, 1, 9);

	EXPECT_EQ(h.core.vcpu({ vm, 1 }).debtNs, static_cast<int64_t>(h.core.options().expressNs));
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, 0);
}

TEST(ExpressPolicy, HintNamingADescheduledVcpuExpressesIt)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.hintUpdate({ vm, 0 }, 1, 0, 1);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost, { vm, 1 }), 1u);
}

// ---- gang ------------------------------------------------------------------------------------

TEST(GangPolicy, FirstTickRunsOneVmAndIdlesTheOthers)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);

	h.core.tick();

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { a, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { a, 1 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { b, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { b, 1 }), 1u);
}

TEST(GangPolicy, VmsTakeTurnsEachQuantum)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);
	h.core.tick();
	h.take();

	h.clock.advance(h.core.options().gangQuantumNs);
	h.core.tick();

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { b, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { b, 1 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { a, 0 }), 1u);
	EXPECT_EQ(h.core.vm(a).counters.gangTurns, 1u);
	EXPECT_EQ(h.core.vm(b).counters.gangTurns, 1u);
}

TEST(GangPolicy, NoSwitchWithinAQuantum)
{
	Harness h(withPolicy(PolicyKind::Gang));
	h.core.addVm("a", 2, nullptr);
	h.core.addVm("b", 2, nullptr);
	h.core.tick();
	h.take();

	h.clock.advance(h.core.options().gangQuantumNs / 2);
	h.core.tick();

	EXPECT_TRUE(h.take().empty());
}

TEST(GangPolicy, HolesAreCountedForAVmNarrowerThanThePool)
{
	Harness h(withPolicy(PolicyKind::Gang), { 0, 1, 2, 3 });
	int narrow = h.core.addVm("narrow", 1, nullptr);
	h.core.addVm("wide", 4, nullptr);
	h.core.tick();

	h.clock.advance(kMs);
	h.core.tick();

	EXPECT_EQ(h.core.vm(narrow).counters.gangHoleCpuNs, 3 * kMs);
}

TEST(GangPolicy, HaltedVcpusLeaveHoles)
{
	Harness h(withPolicy(PolicyKind::Gang), { 0, 1 });
	int a = h.core.addVm("a", 2, nullptr);
	h.core.addVm("b", 2, nullptr);
	h.core.tick();
	h.core.vcpuState({ a, 1 }, S::Halted, 1);

	h.clock.advance(kMs);
	h.core.tick();

	EXPECT_EQ(h.core.vm(a).counters.gangHoleCpuNs, kMs);
}

TEST(GangPolicy, StoppedVmLosesItsTurn)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 1, nullptr);
	int b = h.core.addVm("b", 1, nullptr);
	int c = h.core.addVm("c", 1, nullptr);
	h.core.tick(); // a
	h.core.removeVm(b);
	h.take();

	h.clock.advance(h.core.options().gangQuantumNs);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost, { c, 0 }), 1u);
	EXPECT_EQ(h.core.vm(a).counters.gangTurns, 1u);
}

// ---- adaptive --------------------------------------------------------------------------------

TEST(AdaptivePolicy, NamedHolderIsExpressed)
{
	Harness h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });

	h.core.longSpin({ vm, 0 }, 2, 9);

	auto actions = h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 2 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Express);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost), 1u);
}

TEST(AdaptivePolicy, PleOnlySpinCoboostsSiblings)
{
	Harness h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost), 2u);
	EXPECT_EQ(Harness::find(actions, ActionKind::Boost, { vm, 1 })->reason, BoostReason::Coboost);
}

TEST(AdaptivePolicy, PleSpinWithHintedDescheduledHolderExpressesTheHolder)
{
	Harness h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	h.core.hintUpdate({ vm, 2 }, 1, 1, kNoVcpu);

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost), 1u);
	EXPECT_EQ(Harness::find(actions, ActionKind::Boost, { vm, 2 })->reason, BoostReason::Express);
}

// A spinning VM with a hint page whose lock progress (seq advance per tick) depends on the
// response adaptive uses for named vCPUs.
struct ProgressScenario {
	ProgressScenario() : h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 }), slots(3, hintSlot(0, 0))
	{
		vm = h.core.addVm("a", 3, slots.data());
		h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
		h.core.tick();
	}
	AdaptivePolicy &adaptive() { return static_cast<AdaptivePolicy &>(h.core.policy()); }
	// Runs ticks; returns how many were spent under each response.
	std::pair<unsigned, unsigned> run(unsigned ticks, uint32_t expressProgress, uint32_t coboostProgress)
	{
		unsigned underExpress = 0, underCoboost = 0;
		for (unsigned t = 0; t < ticks; ++t) {
			bool express = adaptive().response(vm) == AdaptivePolicy::Response::Express;
			(express ? underExpress : underCoboost)++;
			slots[2].seq += express ? expressProgress : coboostProgress;
			h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
			h.clock.advance(kMs);
			h.core.tick();
			h.take();
		}
		return { underExpress, underCoboost };
	}
	Harness h;
	std::vector<spindle_hint_slot> slots;
	int vm = -1;
};

TEST(AdaptivePolicy, ResponseMovesToCoboostWhenItsEpochsMakeMoreLockProgress)
{
	ProgressScenario p;

	auto [underExpress, underCoboost] = p.run(40 * AdaptivePolicy::kEpochTicks, 2, 20);

	EXPECT_GT(underCoboost, 2 * underExpress);
}

TEST(AdaptivePolicy, ResponseStaysExpressWhenExpressEpochsMakeMoreLockProgress)
{
	ProgressScenario p;

	auto [underExpress, underCoboost] = p.run(40 * AdaptivePolicy::kEpochTicks, 20, 2);

	EXPECT_GT(underExpress, 2 * underCoboost);
}

TEST(AdaptivePolicy, LosingResponseIsStillTriedEveryFewEpochs)
{
	ProgressScenario p;

	unsigned underExpress = p.run(40 * AdaptivePolicy::kEpochTicks, 2, 20).first;

	EXPECT_GE(underExpress, 40 / AdaptivePolicy::kExploreEvery * AdaptivePolicy::kEpochTicks / 2);
}

TEST(AdaptivePolicy, NamedHolderIsCoboostedWhenThatIsTheVmsResponse)
{
	ProgressScenario p;
	p.run(2 * AdaptivePolicy::kEpochTicks, 2, 20); // second epoch tries co-boosting
	ASSERT_EQ(p.adaptive().response(p.vm), AdaptivePolicy::Response::Coboost);
	p.h.setStates(p.vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	p.h.clock.advance(10 * kMs); // past the last round and its debts
	p.h.core.tick();
	p.h.take();

	p.h.core.longSpin({ p.vm, 0 }, 2, 9);

	const std::vector<Action> actions = p.h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { p.vm, 2 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Coboost);
}

TEST(AdaptivePolicy, VmWithoutHintsKeepsExpressForNamedVcpus)
{
	Harness h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });

	for (unsigned t = 0; t < 3 * AdaptivePolicy::kEpochTicks; ++t) {
		h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
		h.clock.advance(kMs);
		h.core.tick();
	}

	EXPECT_EQ(static_cast<AdaptivePolicy &>(h.core.policy()).response(vm), AdaptivePolicy::Response::Express);
}

// Two VMs of two vCPUs on two CPUs, every vCPU ready, both spinning every tick.
struct SaturatedPool {
	SaturatedPool() : h(withPolicy(PolicyKind::Adaptive))
	{
		a = h.core.addVm("a", 2, nullptr);
		b = h.core.addVm("b", 2, nullptr);
		h.setStates(a, { S::Running, S::Runnable }, { 0, 1 });
		h.setStates(b, { S::Runnable, S::Running }, { 0, 1 });
	}
	AdaptivePolicy &adaptive() { return static_cast<AdaptivePolicy &>(h.core.policy()); }
	std::vector<Action> ticks(unsigned n)
	{
		std::vector<Action> all;
		for (unsigned t = 0; t < n; ++t) {
			h.core.spinDetected({ a, 0 }, SpinSource::Ple);
			h.core.spinDetected({ b, 1 }, SpinSource::Ple);
			h.clock.advance(kMs);
			h.core.tick();
			auto actions = h.take();
			all.insert(all.end(), actions.begin(), actions.end());
		}
		return all;
	}
	Harness h;
	int a = -1;
	int b = -1;
};

TEST(AdaptivePolicy, SpinningVmsThatFillThePoolTakeTurns)
{
	SaturatedPool p;

	auto actions = p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	EXPECT_TRUE(p.adaptive().turnsActive());
	size_t gangBoosts = 0;
	for (const Action &act : actions)
		gangBoosts += act.kind == ActionKind::Boost && act.reason == BoostReason::Gang ? 1 : 0;
	EXPECT_EQ(gangBoosts, 2u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize), 2u);
}

TEST(AdaptivePolicy, NoTurnsWhenASpinningVmWouldLeaveAHole)
{
	SaturatedPool p;
	p.h.setStates(p.b, { S::Halted, S::Running }, { 0, 1 });

	p.ticks(4 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_FALSE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, QuietVmSmallerThanThePoolDoesNotPreventTurns)
{
	SaturatedPool p;
	int quiet = p.h.core.addVm("quiet", 1, nullptr);
	p.h.setStates(quiet, { S::Running }, { 0 });

	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	EXPECT_TRUE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, TurnsSkipAVmWithNothingReady)
{
	SaturatedPool p;
	int idle = p.h.core.addVm("idle", 2, nullptr);
	p.h.setStates(idle, { S::Halted, S::Halted }, { 0, 1 });
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());

	p.ticks(static_cast<unsigned>(4 * p.h.core.options().gangQuantumNs / kMs));

	EXPECT_EQ(p.h.core.vm(idle).counters.gangTurns, 0u);
	EXPECT_GE(p.h.core.vm(p.a).counters.gangTurns, 2u);
	EXPECT_GE(p.h.core.vm(p.b).counters.gangTurns, 2u);
}

TEST(GangPolicy, BaselineGivesAVmWithNothingReadyItsTurn)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int busy = h.core.addVm("busy", 2, nullptr);
	int idle = h.core.addVm("idle", 2, nullptr);
	h.setStates(busy, { S::Running, S::Runnable }, { 0, 1 });
	h.setStates(idle, { S::Halted, S::Halted }, { 0, 1 });

	for (uint64_t t = 0; t < 3 * h.core.options().gangQuantumNs / kMs; ++t) {
		h.clock.advance(kMs);
		h.core.tick();
	}

	EXPECT_GE(h.core.vm(idle).counters.gangTurns, 1u);
	EXPECT_GT(h.core.vm(idle).counters.gangHoleCpuNs, 0u);
}

TEST(AdaptivePolicy, NoTurnsWithoutSpinWaits)
{
	SaturatedPool p;

	for (unsigned t = 0; t < 4 * AdaptivePolicy::kTurnHysteresisTicks; ++t) {
		p.h.clock.advance(kMs);
		p.h.core.tick();
	}

	EXPECT_FALSE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, TurnsEndAndEveryVcpuIsRestoredWhenAVmStopsFillingThePool)
{
	SaturatedPool p;
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());
	p.h.setStates(p.a, { S::Halted, S::Halted }, { 0, 1 });

	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	EXPECT_FALSE(p.adaptive().turnsActive());
	for (int vm : { p.a, p.b })
		for (unsigned i = 0; i < 2; ++i) {
			EXPECT_FALSE(p.h.core.vcpu({ vm, i }).deprioritized) << vm << "." << i;
			EXPECT_FALSE(p.h.core.vcpu({ vm, i }).boosted && p.h.core.vcpu({ vm, i }).boostReason == BoostReason::Gang)
				<< vm << "." << i;
		}
}

TEST(AdaptivePolicy, HolderInAVmThatDoesNotSpinIsNotExtended)
{
	Harness h(withPolicy(PolicyKind::Adaptive));
	int vm = h.core.addVm("quiet", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
}

TEST(AdaptivePolicy, HolderInASpinningVmIsExtended)
{
	Harness h(withPolicy(PolicyKind::Adaptive));
	int vm = h.core.addVm("busy", 2, nullptr);
	h.setStates(vm, { S::Running, S::Running }, { 0, 1 });
	h.core.spinDetected({ vm, 1 }, SpinSource::Ple); // nobody runnable: nothing to co-boost
	h.take();

	h.core.hintUpdate({ vm, 0 }, 1, 1, kNoVcpu);

	const std::vector<Action> actions = h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 0 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Extend);
}

// Runs kAdaptRounds co-boost rounds on a 2-vCPU VM; with keepSpinning the spinner reports again
// during each round (no progress), otherwise the round is followed by silence (progress).
uint64_t sliceAfterRounds(bool keepSpinning, uint64_t &before, SchedulerOptions &o)
{
	o = withPolicy(PolicyKind::Adaptive);
	o.repayPercent = 100;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);
	auto &policy = static_cast<AdaptivePolicy &>(h.core.policy());
	before = policy.sliceNs(vm);
	h.core.tick();
	for (unsigned round = 0; round < AdaptivePolicy::kAdaptRounds; ++round) {
		h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
		h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
		if (keepSpinning)
			h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
		h.clock.advance(policy.sliceNs(vm));
		h.core.tick();
		h.clock.advance(10 * kMs); // repay
		h.core.tick();
	}
	return policy.sliceNs(vm);
}

TEST(AdaptivePolicy, SliceGrowsWhenRoundsAreNotFollowedByProgress)
{
	uint64_t before;
	SchedulerOptions o;

	uint64_t after = sliceAfterRounds(true, before, o);

	EXPECT_EQ(after, std::min(before * 2, o.adaptMaxSliceNs));
}

TEST(AdaptivePolicy, SliceShrinksWhenRoundsAreFollowedByProgress)
{
	uint64_t before;
	SchedulerOptions o;

	uint64_t after = sliceAfterRounds(false, before, o);

	EXPECT_LT(after, before);
	EXPECT_GE(after, o.adaptMinSliceNs);
}


// ---- boost capacity ---------------------------------------------------------------------------

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

TEST(BoostCapacity, GangTurnsAreNotCapped)
{
	auto options = withPolicy(PolicyKind::Gang);
	options.maxConcurrentBoosts = 1;
	Harness h(options, { 0, 1 });
	int a = h.core.addVm("a", 2, nullptr);
	h.core.addVm("b", 2, nullptr);

	h.core.tick();

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { a, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { a, 1 }), 1u);
}

} // namespace
} // namespace spindle::sched::test

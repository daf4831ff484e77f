// extend: a running hinted holder is boosted until the hint says released.

#include <gtest/gtest.h>

#include "harness.h"
#include "spindle_abi.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

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

TEST(ExtendPolicy, SampledRaisedTprOfAVmWithoutAHintPageGetsHalfAnExtension)
{
	Harness h(withPolicy(PolicyKind::Extend));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	uint64_t t0 = h.clock.nowNs();

	h.core.sampled({ vm, 0 }, 8, 0, true);
	h.core.tick();

	const std::vector<Action> actions = h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { vm, 0 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Extend);
	EXPECT_EQ(b->untilNs, t0 + h.core.options().extendMaxNs / 2);
}

TEST(ExtendPolicy, SampledHintsAreIgnoredWhereTheVmHasAHintPage)
{
	Harness h(withPolicy(PolicyKind::Extend));
	std::vector<spindle_hint_slot> slots(2, hintSlot(0, 0));
	int vm = h.core.addVm("a", 2, slots.data());
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.sampled({ vm, 0 }, 8, 0, true);
	h.core.tick();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u) << "the hint page says nothing is held";
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

} // namespace
} // namespace spindle::sched::test

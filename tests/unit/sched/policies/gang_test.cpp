// gang: the baseline co-schedules each VM in turn and counts the holes.

#include <gtest/gtest.h>

#include "harness.h"
#include "sched/policies/gang.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

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

TEST(GangPolicy, TurnOutlastsItsQuantumUntilTheNextTurnTakesOver)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);
	h.core.tick();
	h.take();

	h.clock.advance(h.core.options().gangQuantumNs);
	h.core.expire(); // the expiry timer, a moment before the tick that starts b's turn

	EXPECT_TRUE(h.take().empty());
	EXPECT_TRUE(h.core.vcpu({ a, 0 }).boosted);
	EXPECT_TRUE(h.core.vcpu({ b, 0 }).deprioritized);
}

TEST(GangPolicy, TurnOfAStarvedSchedulerEndsWithinTheOverlap)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);
	h.core.tick();
	h.take();

	h.clock.advance(h.core.options().gangQuantumNs + GangPolicy::kTurnOverlapTicks * h.core.options().tickNs);
	h.core.expire(); // no tick came since the turn began

	auto actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { a, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { a, 1 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Restore, { b, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Restore, { b, 1 }), 1u);
}

TEST(GangPolicy, NoTurnEndIsNamedBeforeTheFirstTurn)
{
	Harness h(withPolicy(PolicyKind::Gang));
	h.core.addVm("a", 2, nullptr);

	EXPECT_EQ(h.core.turnEndsNs(), 0u);
}

TEST(GangPolicy, TurnEndIsAQuantumAfterTheTickThatStartedTheTurn)
{
	Harness h(withPolicy(PolicyKind::Gang));
	h.core.addVm("a", 2, nullptr);
	h.core.addVm("b", 2, nullptr);
	const uint64_t start = h.clock.nowNs();

	h.core.tick();

	EXPECT_EQ(h.core.turnEndsNs(), start + h.core.options().gangQuantumNs);
}

TEST(GangPolicy, SpinWaitsNeedNoAnswerFromGang)
{
	Harness h(withPolicy(PolicyKind::Gang));
	int a = h.core.addVm("a", 2, nullptr);
	h.core.addVm("b", 2, nullptr);
	h.core.tick();

	h.core.spinDetected({ a, 0 }, SpinSource::Pv);

	EXPECT_FALSE(h.core.answersSpins());
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

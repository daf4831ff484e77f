// Adaptive's turns: the spinning VMs one at a time, the others together under CFS, each turn as
// long as its vCPUs are owed.

#include <gtest/gtest.h>

#include "harness.h"
#include "sched/policies/gang.h"
#include "sched/policies/spin_turns.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

// On 2 CPUs: `lock`, 2 vCPUs, spinning; `one` and `two`, 1 vCPU each, not spinning. All ready.
struct MixedSizes {
	MixedSizes() : h(withPolicy(PolicyKind::Cfs))
	{
		lock = h.core.addVm("lock", 2, nullptr);
		one = h.core.addVm("one", 1, nullptr);
		two = h.core.addVm("two", 1, nullptr);
		h.setStates(lock, { S::Running, S::Running }, { 0, 1 });
		h.setStates(one, { S::Runnable }, { 0 });
		h.setStates(two, { S::Runnable }, { 1 });
	}
	std::vector<Action> tickAfter(uint64_t ns)
	{
		h.clock.advance(ns);
		turns.onTick(h.core, spinning);
		return h.take();
	}
	uint64_t quantum() const { return h.core.options().gangQuantumNs; }

	Harness h;
	SpinTurns turns;
	std::vector<bool> spinning{ true, false, false };
	int lock = -1, one = -1, two = -1;
};

TEST(SpinTurns, SpinningVmHasThePoolToItselfInItsTurn)
{
	MixedSizes f;

	auto actions = f.tickAfter(0);

	EXPECT_EQ(f.turns.current(), f.lock);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { f.lock, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Boost, { f.lock, 1 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { f.one, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Deprioritize, { f.two, 0 }), 1u);
}

TEST(SpinTurns, VmsThatDoNotSpinShareTheNextTurnUnderCfs)
{
	MixedSizes f;
	f.tickAfter(0);

	auto actions = f.tickAfter(f.quantum());

	EXPECT_EQ(f.turns.current(), SpinTurns::kShared);
	for (int vm : { f.one, f.two }) {
		EXPECT_EQ(Harness::count(actions, ActionKind::Restore, { vm, 0 }), 1u) << vm;
		EXPECT_FALSE(f.h.core.vcpu({ vm, 0 }).boosted) << vm;
		EXPECT_FALSE(f.h.core.vcpu({ vm, 0 }).deprioritized) << vm;
	}
	EXPECT_TRUE(f.h.core.vcpu({ f.lock, 0 }).deprioritized);
	EXPECT_TRUE(f.h.core.vcpu({ f.lock, 1 }).deprioritized);
}

TEST(SpinTurns, SharedTurnLastsAQuantumPerPoolWidthOfItsReadyVcpus)
{
	MixedSizes f;
	int three = f.h.core.addVm("three", 2, nullptr);
	f.h.setStates(three, { S::Runnable, S::Runnable }, { 0, 1 });
	f.spinning.push_back(false);
	f.tickAfter(0);
	f.tickAfter(f.quantum()); // shared: 4 ready vCPUs on 2 CPUs

	f.tickAfter(f.quantum());
	const int afterOneQuantum = f.turns.current();
	f.tickAfter(f.quantum());

	EXPECT_EQ(afterOneQuantum, SpinTurns::kShared);
	EXPECT_EQ(f.turns.current(), f.lock);
}

TEST(SpinTurns, SpinningVmsGoInIdOrderThenTheSharedTurn)
{
	MixedSizes f;
	int other = f.h.core.addVm("other", 2, nullptr);
	f.h.setStates(other, { S::Running, S::Running }, { 0, 1 });
	f.spinning.push_back(true);
	std::vector<int> order;

	for (int turn = 0; turn < 4; ++turn) {
		f.tickAfter(turn == 0 ? 0 : f.quantum());
		order.push_back(f.turns.current());
	}

	EXPECT_EQ(order, (std::vector<int>{ f.lock, other, SpinTurns::kShared, f.lock }));
}

TEST(SpinTurns, NoSharedTurnWhenNoQuietVmHasAVcpuReady)
{
	MixedSizes f;
	f.h.setStates(f.one, { S::Halted }, { 0 });
	f.h.setStates(f.two, { S::Halted }, { 1 });
	f.tickAfter(0);

	f.tickAfter(f.quantum());

	EXPECT_EQ(f.turns.current(), f.lock);
	EXPECT_EQ(f.h.core.vm(f.one).counters.gangTurns, 0u);
}

TEST(SpinTurns, EveryVmInTheSharedTurnCountsATurn)
{
	MixedSizes f;
	f.tickAfter(0);

	f.tickAfter(f.quantum());

	EXPECT_EQ(f.h.core.vm(f.lock).counters.gangTurns, 1u);
	EXPECT_EQ(f.h.core.vm(f.one).counters.gangTurns, 1u);
	EXPECT_EQ(f.h.core.vm(f.two).counters.gangTurns, 1u);
}

TEST(SpinTurns, TurnOutlastsItsQuantumUntilTheNextTurnTakesOver)
{
	MixedSizes f;
	f.tickAfter(0);

	f.h.clock.advance(f.quantum());
	f.h.core.expire(); // the expiry timer, a moment before the tick

	EXPECT_TRUE(f.h.take().empty());
	EXPECT_TRUE(f.h.core.vcpu({ f.lock, 0 }).boosted);
}

TEST(SpinTurns, TurnOfAStarvedSchedulerEndsWithinTheOverlap)
{
	MixedSizes f;
	f.tickAfter(0);

	f.h.clock.advance(f.quantum() + GangPolicy::kTurnOverlapTicks * f.h.core.options().tickNs);
	f.h.core.expire(); // no tick came since the turn began

	auto actions = f.h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { f.lock, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Restore, { f.one, 0 }), 1u);
}

TEST(SpinTurns, PausedTurnsResumeWithTheTurnAfterTheLastServed)
{
	MixedSizes f;
	f.tickAfter(0);
	f.turns.pause();

	f.tickAfter(kMs);

	EXPECT_EQ(f.turns.current(), SpinTurns::kShared);
}

TEST(SpinTurns, VmThatStopsSpinningLosesItsOwnTurnAtTheNextTick)
{
	MixedSizes f;
	f.tickAfter(0);
	f.spinning[0] = false;

	f.tickAfter(kMs);

	EXPECT_EQ(f.turns.current(), SpinTurns::kShared);
	EXPECT_FALSE(f.h.core.vcpu({ f.lock, 0 }).boosted);
}

// On 2 CPUs: `a` and `b`, 2 vCPUs each, both spinning, all ready.
struct TwoSpinning {
	TwoSpinning() : h(withPolicy(PolicyKind::Cfs))
	{
		a = h.core.addVm("a", 2, nullptr);
		b = h.core.addVm("b", 2, nullptr);
		h.setStates(a, { S::Running, S::Running }, { 0, 1 });
		h.setStates(b, { S::Runnable, S::Runnable }, { 0, 1 });
	}
	void tickAfter(uint64_t ns)
	{
		h.clock.advance(ns);
		turns.onTick(h.core, spinning);
		h.take();
	}
	uint64_t quantum() const { return h.core.options().gangQuantumNs; }

	Harness h;
	SpinTurns turns;
	std::vector<bool> spinning{ true, true };
	int a = -1, b = -1;
};

// A sleepy VM: its vCPUs halted a moment ago wake within their idle phase, in its turn.
TEST(SpinTurns, SpinningVmWhoseVcpusHaltedJustNowKeepsItsTurn)
{
	TwoSpinning f;
	f.tickAfter(0);
	f.h.clock.advance(f.quantum() - kMs);
	f.h.setStates(f.b, { S::Halted, S::Halted }, { 0, 1 });

	f.tickAfter(kMs);

	EXPECT_EQ(f.turns.current(), f.b);
	EXPECT_EQ(f.h.core.vm(f.b).counters.gangTurns, 1u);
}

TEST(SpinTurns, SpinningVmWithNothingReadyForAQuantumIsSkipped)
{
	TwoSpinning f;
	f.h.setStates(f.b, { S::Halted, S::Halted }, { 0, 1 });
	f.tickAfter(0);

	f.tickAfter(f.quantum());

	EXPECT_EQ(f.turns.current(), f.a);
	EXPECT_EQ(f.h.core.vm(f.b).counters.gangTurns, 0u);
}

} // namespace
} // namespace spindle::sched::test

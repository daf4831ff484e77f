// adaptive: named responses, adapted slices, extensions where VMs spin, and turns.

#include <algorithm>

#include <gtest/gtest.h>

#include "harness.h"
#include "sched/policies/adaptive.h"
#include "spindle_abi.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

// One VM alone, its vCPUs preempted by threads outside the VMs: answered once the wait is long.
void preemptedAWhile(Harness &h) { h.clock.advance(AdaptivePolicy::kLongPreemptionNs); }

TEST(AdaptivePolicy, NamedHolderIsExpressed)
{
	Harness h(withPolicy(PolicyKind::Adaptive), { 0, 1, 2 });
	int vm = h.core.addVm("a", 3, nullptr);
	h.setStates(vm, { S::Running, S::Runnable, S::Runnable }, { 0, 1, 2 });
	preemptedAWhile(h);

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
	preemptedAWhile(h);

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
	preemptedAWhile(h);
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
	preemptedAWhile(h);
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
	preemptedAWhile(h);

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
	// Ticks with no spin reported.
	void quietTicks(unsigned n)
	{
		for (unsigned t = 0; t < n; ++t) {
			h.clock.advance(kMs);
			h.core.tick();
		}
	}
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
	// A 1-vCPU VM beside them: narrower than the pool, quiet until ticksWithNarrowSpinning.
	int addNarrowVm()
	{
		const int narrow = h.core.addVm("narrow", 1, nullptr);
		h.setStates(narrow, { S::Running }, { 0 });
		return narrow;
	}
	std::vector<Action> ticksWithNarrowSpinning(int narrow, unsigned n)
	{
		std::vector<Action> all;
		for (unsigned t = 0; t < n; ++t) {
			h.core.spinDetected({ narrow, 0 }, SpinSource::Ple);
			auto actions = ticks(1);
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

// A sleepy VM: its halted vCPUs leave holes in its turn that the other VM's threads fill.
TEST(AdaptivePolicy, SpinningVmWithHalfItsVcpusHaltedStillTakesTurns)
{
	SaturatedPool p;
	p.h.setStates(p.b, { S::Halted, S::Running }, { 0, 1 });

	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	EXPECT_TRUE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, NoTurnsWhenASpinningVmIsNarrowerThanThePool)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();

	p.ticksWithNarrowSpinning(narrow, 4 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_FALSE(p.adaptive().turnsActive());
}

// In turns a VM counts as spinning for 10 s; a narrow one's old spin must not end every phase.
TEST(AdaptivePolicy, NarrowVmThatStoppedSpinningLetsTurnsGoOn)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();
	p.ticksWithNarrowSpinning(narrow, 1);

	p.ticks(AdaptivePolicy::kSpinMemoryTicks + 4 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_TRUE(p.adaptive().turnsActive());
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

TEST(AdaptivePolicy, RunningTurnsKeepTheFastTick)
{
	SaturatedPool p;
	const bool beforeTurns = p.adaptive().allowsQuietTicks(p.h.core);

	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	ASSERT_TRUE(p.adaptive().turnsActive());
	EXPECT_TRUE(beforeTurns);
	EXPECT_FALSE(p.adaptive().allowsQuietTicks(p.h.core));
}

// Phases of turns can be short (a VM stops filling the pool for a moment): each new phase must
// go on round the VMs, or the first VMs get every phase's first turn and the last ones starve.
TEST(AdaptivePolicy, TurnsResumeWithTheVmAfterTheLastOneServed)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());
	ASSERT_EQ(p.h.core.vm(p.a).counters.gangTurns, 1u);
	p.ticksWithNarrowSpinning(narrow, AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_FALSE(p.adaptive().turnsActive());

	const std::vector<Action> actions =
		p.ticks(AdaptivePolicy::kSpinMemoryTicks + AdaptivePolicy::kTurnHysteresisTicks + 1);

	ASSERT_TRUE(p.adaptive().turnsActive());
	const auto firstTurn = std::find_if(actions.begin(), actions.end(), [](const Action &a) {
		return a.kind == ActionKind::Boost && a.reason == BoostReason::Gang;
	});
	ASSERT_NE(firstTurn, actions.end());
	EXPECT_EQ(firstTurn->who.vm, p.b);
	EXPECT_EQ(p.h.core.vm(p.b).counters.gangTurns, 1u);
}

TEST(AdaptivePolicy, TurnsOutlastTheSpinsTheyCure)
{
	SaturatedPool p;
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());

	p.quietTicks(AdaptivePolicy::kTurnSpinMemoryTicks - AdaptivePolicy::kTurnHysteresisTicks - 1);

	EXPECT_TRUE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, TurnsEndOnceNoVmHasSpunForTheTurnMemory)
{
	SaturatedPool p;
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());

	p.quietTicks(AdaptivePolicy::kTurnSpinMemoryTicks + 2 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_FALSE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, NoTurnsWithoutSpinWaits)
{
	SaturatedPool p;

	p.quietTicks(4 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_FALSE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, NoTurnEndIsNamedOutsideTurns)
{
	SaturatedPool p;

	p.quietTicks(4 * AdaptivePolicy::kTurnHysteresisTicks);

	EXPECT_EQ(p.h.core.turnEndsNs(), 0u);
	EXPECT_TRUE(p.h.core.answersSpins());
}

TEST(AdaptivePolicy, RunningTurnsNameTheirEndAndAnswerNoSpin)
{
	SaturatedPool p;

	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);

	ASSERT_TRUE(p.adaptive().turnsActive());
	EXPECT_GT(p.h.core.turnEndsNs(), p.h.clock.nowNs());
	EXPECT_LE(p.h.core.turnEndsNs(), p.h.clock.nowNs() + p.h.core.options().gangQuantumNs);
	EXPECT_FALSE(p.h.core.answersSpins());
}

// In turns the scheduler ticks at turn ends only: the hysteresis is time, seen at two ticks.
TEST(AdaptivePolicy, TurnsEndAtTheSecondTurnEndAfterANarrowVmSpins)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());
	const uint64_t quantum = p.h.core.options().gangQuantumNs;

	p.h.core.spinDetected({ narrow, 0 }, SpinSource::Ple);
	p.h.clock.advance(quantum);
	p.h.core.tick();
	const bool afterOne = p.adaptive().turnsActive();
	p.h.core.spinDetected({ narrow, 0 }, SpinSource::Ple);
	p.h.clock.advance(quantum);
	p.h.core.tick();

	EXPECT_TRUE(afterOne);
	EXPECT_FALSE(p.adaptive().turnsActive());
}

TEST(AdaptivePolicy, TurnsEndAndEveryVcpuIsRestoredWhenANarrowVmSpins)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());

	p.ticksWithNarrowSpinning(narrow, AdaptivePolicy::kTurnHysteresisTicks + 1);

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
	int other = h.core.addVm("other", 2, nullptr);
	h.setStates(vm, { S::Running, S::Running }, { 0, 1 });
	h.setStates(other, { S::Runnable, S::Runnable }, { 0, 1 }); // 4 ready vCPUs on 2 CPUs
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

TEST(AdaptivePolicy, HoldReleasedDuringTurnsLetsItsHolderBeExtendedForTheNextHold)
{
	SaturatedPool p;
	const int narrow = p.addNarrowVm();
	p.ticks(1);
	p.h.core.hintUpdate({ p.a, 0 }, 1, 1, kNoVcpu);
	ASSERT_EQ(Harness::count(p.h.take(), ActionKind::Boost, { p.a, 0 }), 1u);
	p.ticks(AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_TRUE(p.adaptive().turnsActive());
	p.h.core.hintUpdate({ p.a, 0 }, 2, 0, kNoVcpu); // released while the VMs take turns
	p.ticksWithNarrowSpinning(narrow, AdaptivePolicy::kTurnHysteresisTicks + 1);
	ASSERT_FALSE(p.adaptive().turnsActive());

	p.h.core.hintUpdate({ p.a, 0 }, 3, 1, kNoVcpu);

	const std::vector<Action> actions = p.h.take();
	const Action *b = Harness::find(actions, ActionKind::Boost, { p.a, 0 });
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(b->reason, BoostReason::Extend);
}

} // namespace
} // namespace spindle::sched::test

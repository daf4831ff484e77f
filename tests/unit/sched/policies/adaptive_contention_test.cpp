// adaptive answers only where a vCPU waits for a CPU: a VM alone whose vCPUs all run gets
// nothing (no boost, no extension, the quiet tick), an overcommitted pool or a long preemption
// gets the usual answers.

#include <gtest/gtest.h>

#include "harness.h"
#include "sched/policies/adaptive.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

// One VM of two vCPUs on two CPUs: vCPU 0 spins, vCPU 1 was seen preempted just now (by the
// scheduler thread itself, a kworker, or on its way back from a wake-up: nothing to displace).
struct LoneVm {
	LoneVm() : h(withPolicy(PolicyKind::Adaptive))
	{
		vm = h.core.addVm("alone", 2, nullptr);
		h.setStates(vm, { S::Running, S::Runnable }, { 0, 1 });
	}
	AdaptivePolicy &adaptive() { return static_cast<AdaptivePolicy &>(h.core.policy()); }
	Harness h;
	int vm = -1;
};

TEST(AdaptiveContention, SpinInALoneVmWithABrieflyPreemptedSiblingGetsNoBoost)
{
	LoneVm p;

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost), 0u);
}

TEST(AdaptiveContention, SiblingPreemptedForLongerThanTheThresholdIsAnswered)
{
	LoneVm p;
	p.h.clock.advance(AdaptivePolicy::kLongPreemptionNs);

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	const std::vector<Action> actions = p.h.take();
	EXPECT_NE(Harness::find(actions, ActionKind::Boost, { p.vm, 1 }), nullptr);
}

TEST(AdaptiveContention, SiblingPreemptedJustUnderTheThresholdIsNotAnswered)
{
	LoneVm p;
	p.h.clock.advance(AdaptivePolicy::kLongPreemptionNs - 1);

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost), 0u);
}

TEST(AdaptiveContention, SiblingWaitingBehindARunningVcpuIsAnsweredAtOnce)
{
	LoneVm p;
	p.h.setStates(p.vm, { S::Running, S::Runnable }, { 0, 0 }); // both pinned to CPU 0

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost, { p.vm, 1 }), 1u);
}

TEST(AdaptiveContention, HolderInALoneVmThatSpinsIsNotExtended)
{
	LoneVm p;
	p.h.setStates(p.vm, { S::Running, S::Running }, { 0, 1 });
	p.h.core.spinDetected({ p.vm, 1 }, SpinSource::Ple);
	p.h.take();

	p.h.core.hintUpdate({ p.vm, 0 }, 1, 1, kNoVcpu);
	p.h.core.tick();

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost), 0u);
}

TEST(AdaptiveContention, LoneVmThatSpinsLetsTheTickGoQuiet)
{
	LoneVm p;
	p.h.core.spinDetected({ p.vm, 0 }, SpinSource::Ple);
	p.h.take();

	EXPECT_FALSE(p.h.core.answersSpins());
	EXPECT_TRUE(p.h.core.quietTickAllowed());
}

TEST(AdaptiveContention, OvercommittedPoolThatSpinsKeepsTheFastTick)
{
	LoneVm p;
	int other = p.h.core.addVm("other", 2, nullptr);
	p.h.setStates(other, { S::Runnable, S::Runnable }, { 0, 1 });
	p.h.core.spinDetected({ p.vm, 0 }, SpinSource::Ple);
	p.h.take();

	EXPECT_TRUE(p.h.core.answersSpins());
	EXPECT_FALSE(p.h.core.quietTickAllowed());
}

// A second VM whose two vCPUs are ready at one tick (4 ready on 2 CPUs) and halted after it.
void overcommitForOneTick(LoneVm &p)
{
	int other = p.h.core.addVm("other", 2, nullptr);
	p.h.setStates(other, { S::Runnable, S::Runnable }, { 0, 1 });
	p.h.core.tick();
	p.h.setStates(other, { S::Halted, S::Halted }, { 0, 1 });
}

// Ready counts swing with every halt: a pool overcommitted at the last tick still counts.
TEST(AdaptiveContention, OvercommitSeenAtATickIsRememberedForTheContendedMemory)
{
	LoneVm p;
	overcommitForOneTick(p);
	p.h.clock.advance((AdaptivePolicy::kContendedMemoryTicks - 1) * p.h.core.options().tickNs);

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost, { p.vm, 1 }), 1u);
}

TEST(AdaptiveContention, OvercommitIsForgottenAfterTheContendedMemory)
{
	LoneVm p;
	overcommitForOneTick(p);
	p.h.setStates(p.vm, { S::Running, S::Running }, { 0, 1 });
	p.h.clock.advance((AdaptivePolicy::kContendedMemoryTicks + 1) * p.h.core.options().tickNs);
	p.h.setStates(p.vm, { S::Running, S::Runnable }, { 0, 1 }); // preempted just now

	p.h.core.longSpin({ p.vm, 0 }, 1, 7);

	EXPECT_EQ(Harness::count(p.h.take(), ActionKind::Boost), 0u);
}

} // namespace
} // namespace spindle::sched::test

// express: a named, de-scheduled vCPU runs at once for the express window.

#include <gtest/gtest.h>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

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

} // namespace
} // namespace spindle::sched::test

// yield: the runnable vCPUs stacked on the spinner's CPU take its time.

#include <gtest/gtest.h>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

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

} // namespace
} // namespace spindle::sched::test

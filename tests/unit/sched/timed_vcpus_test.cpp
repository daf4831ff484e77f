// The set of vCPUs with an end time (sched/timed_vcpus.h), and the core's expiry that now walks
// only that set: every favour still ends, once, when its time comes.

#include <gtest/gtest.h>

#include "sched/core.h"
#include "sched/timed_vcpus.h"
#include "tests/unit/sched/harness.h"

namespace spindle::sched {
namespace {

using test::Harness;
using test::kMs;
using test::kUs;
using test::withPolicy;

TEST(TimedVcpus, AVcpuMarkedTimedTwiceIsHeldOnce)
{
	TimedVcpus timed;

	timed.update({ 0, 3 }, true);
	timed.update({ 0, 3 }, true);

	EXPECT_EQ(timed.ids().size(), 1u);
}

TEST(TimedVcpus, AVcpuMarkedUntimedLeavesTheSet)
{
	TimedVcpus timed;
	timed.update({ 0, 3 }, true);
	timed.update({ 1, 0 }, true);

	timed.update({ 0, 3 }, false);

	ASSERT_EQ(timed.ids().size(), 1u);
	EXPECT_EQ(timed.ids()[0], (VcpuId{ 1, 0 }));
}

TEST(TimedVcpus, IdsAreInVmThenVcpuOrder)
{
	TimedVcpus timed;
	timed.update({ 2, 0 }, true);
	timed.update({ 0, 5 }, true);
	timed.update({ 0, 1 }, true);

	const std::vector<VcpuId> &ids = timed.ids();

	ASSERT_EQ(ids.size(), 3u);
	EXPECT_EQ(ids[0], (VcpuId{ 0, 1 }));
	EXPECT_EQ(ids[1], (VcpuId{ 0, 5 }));
	EXPECT_EQ(ids[2], (VcpuId{ 2, 0 }));
}

TEST(SchedCoreExpiry, EveryDueBoostEndsOnceAcrossVms)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int a = h.core.addVm("a", 2, nullptr);
	int b = h.core.addVm("b", 2, nullptr);
	h.core.grantBoost({ b, 1 }, 100 * kUs, BoostReason::Coboost, false);
	h.core.grantBoost({ a, 0 }, 100 * kUs, BoostReason::Coboost, false);
	h.take();
	h.clock.advance(100 * kUs);

	h.core.expire();
	h.core.expire();

	std::vector<Action> actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { a, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { b, 1 }), 1u);
	EXPECT_EQ(h.core.nextExpiryNs(), UINT64_MAX);
}

TEST(SchedCoreExpiry, ABoostNotYetDueStaysAndNamesTheNextExpiry)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.core.grantBoost({ vm, 0 }, 50 * kUs, BoostReason::Express, false);
	h.core.grantBoost({ vm, 1 }, kMs, BoostReason::Coboost, false);
	uint64_t longEnds = h.clock.nowNs() + kMs;
	h.take();
	h.clock.advance(50 * kUs);

	h.core.expire();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost), 1u);
	EXPECT_TRUE(h.core.vcpu({ vm, 1 }).boosted);
	EXPECT_EQ(h.core.nextExpiryNs(), longEnds);
}

TEST(SchedCoreExpiry, ADeprioritizationReplacedByABoostEndsWithTheBoost)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.deprioritize({ vm, 0 }, 10 * kMs);
	h.core.grantBoost({ vm, 0 }, 100 * kUs, BoostReason::Express, false);
	h.take();
	h.clock.advance(100 * kUs);

	h.core.expire();

	std::vector<Action> actions = h.take();
	EXPECT_EQ(Harness::count(actions, ActionKind::Unboost, { vm, 0 }), 1u);
	EXPECT_EQ(Harness::count(actions, ActionKind::Restore, { vm, 0 }), 0u);
	EXPECT_EQ(h.core.nextExpiryNs(), UINT64_MAX);
}

TEST(SchedCoreExpiry, ADeprioritizationIsRestoredWhenDue)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.deprioritize({ vm, 0 }, 500 * kUs);
	h.take();
	h.clock.advance(500 * kUs);

	h.core.expire();

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Restore, { vm, 0 }), 1u);
	EXPECT_EQ(h.core.nextExpiryNs(), UINT64_MAX);
}

} // namespace
} // namespace spindle::sched

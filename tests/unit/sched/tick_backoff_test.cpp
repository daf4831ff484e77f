// The fast tick's back-off (sched/tick_backoff.h): idle ticks double the period up to the
// ceiling, activity at a tick or between ticks brings back the fast tick.

#include <gtest/gtest.h>

#include "sched/core.h"
#include "sched/tick_backoff.h"
#include "tests/unit/sched/harness.h"

namespace spindle::sched {
namespace {

constexpr uint64_t kFast = 1'000'000;
constexpr uint64_t kCeiling = 4'000'000;

TEST(TickBackoff, StartsAtTheFastTick)
{
	TickBackoff backoff(kFast, kCeiling);

	EXPECT_EQ(backoff.periodNs(), kFast);
}

TEST(TickBackoff, EachIdleTickDoublesThePeriodUpToTheCeiling)
{
	TickBackoff backoff(kFast, kCeiling);
	std::vector<uint64_t> periods;

	for (int i = 0; i < 4; ++i) {
		backoff.afterTick(0);
		periods.push_back(backoff.periodNs());
	}

	EXPECT_EQ(periods, (std::vector<uint64_t>{ 2'000'000, 4'000'000, 4'000'000, 4'000'000 }));
}

TEST(TickBackoff, ActivityAtATickBringsBackTheFastTick)
{
	TickBackoff backoff(kFast, kCeiling);
	backoff.afterTick(0);
	backoff.afterTick(0);

	backoff.afterTick(1);

	EXPECT_EQ(backoff.periodNs(), kFast);
}

TEST(TickBackoff, ActivityBetweenTicksBringsBackTheFastTick)
{
	TickBackoff backoff(kFast, kCeiling);
	backoff.afterTick(0);

	backoff.afterEvent(3);

	EXPECT_EQ(backoff.periodNs(), kFast);
}

TEST(TickBackoff, AnEventWithoutActivityKeepsTheBackedOffPeriod)
{
	TickBackoff backoff(kFast, kCeiling);
	backoff.afterTick(0);

	backoff.afterEvent(0);

	EXPECT_EQ(backoff.periodNs(), 2'000'000u);
}

TEST(TickBackoff, ActivitySeenByAnEventDoesNotCountAgainAtTheNextTick)
{
	TickBackoff backoff(kFast, kCeiling);
	backoff.afterEvent(1);

	backoff.afterTick(1);

	EXPECT_EQ(backoff.periodNs(), 2'000'000u);
}

TEST(TickBackoff, ACeilingAtTheFastTickTurnsItOff)
{
	TickBackoff backoff(kFast, kFast / 2);

	backoff.afterTick(0);
	backoff.afterTick(0);

	EXPECT_EQ(backoff.periodNs(), kFast);
}

TEST(TickBackoff, TheCoreCountsASpinWaitAsActivity)
{
	test::Harness h(test::withPolicy(PolicyKind::Coboost));
	const int vm = h.core.addVm("vm", 2, nullptr);
	const uint64_t before = h.core.activity();

	h.core.spinDetected({ vm, 0 }, SpinSource::Pv);

	EXPECT_GT(h.core.activity(), before);
}

TEST(TickBackoff, ATickWithNothingToAnswerIsNoActivity)
{
	test::Harness h(test::withPolicy(PolicyKind::Coboost));
	h.core.addVm("vm", 2, nullptr);
	h.core.tick();
	const uint64_t before = h.core.activity();

	h.clock.advance(1'000'000);
	h.core.tick();

	EXPECT_EQ(h.core.activity(), before);
}

} // namespace
} // namespace spindle::sched

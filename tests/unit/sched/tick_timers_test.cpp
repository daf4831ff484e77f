// The scheduler's timers: an unchanged expiry costs no system call, and the tick slows down
// while nothing spins and speeds up at the first spin report (real Scheduler, real threads;
// counts of ticks, never their timing).

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "sched/scheduler.h"
#include "sched/tick_timers.h"

namespace spindle::sched {
namespace {

using namespace std::chrono_literals;

TEST(TickTimers, AnUnchangedExpiryIsArmedOnce)
{
	auto timers = TickTimers::create();
	ASSERT_TRUE(timers.ok()) << timers.error().message();

	timers->armExpiry(5'000'000'000'000);
	timers->armExpiry(5'000'000'000'000);

	EXPECT_EQ(timers->expiryRearms(), 1u);
}

TEST(TickTimers, TheSameExpiryIsArmedAgainOnceTheTimerFired)
{
	auto timers = TickTimers::create();
	ASSERT_TRUE(timers.ok()) << timers.error().message();
	timers->armExpiry(5'000'000'000'000);

	timers->expiryFired();
	timers->armExpiry(5'000'000'000'000);

	EXPECT_EQ(timers->expiryRearms(), 2u);
}

TEST(TickTimers, AZeroTickPeriodIsRejected)
{
	auto timers = TickTimers::create();
	ASSERT_TRUE(timers.ok()) << timers.error().message();

	Status s = timers->setTickPeriod(0);

	EXPECT_FALSE(s.ok());
	EXPECT_EQ(timers->tickPeriodNs(), 0u);
}

// Ticks that ran at the fast tick.
uint64_t fastTicks(const Scheduler &s)
{
	const HostMetrics m = s.metrics().host;
	return m.ticks - m.quietTicks;
}

TEST(Scheduler, ASchedulerWithNothingSpinningSlowsToTheQuietTick)
{
	SchedulerOptions o;
	o.policy = PolicyKind::Express;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	(void)*(*s)->addVm("idle", 2, nullptr);
	ASSERT_TRUE((*s)->start().ok());

	uint64_t quiet = 0;
	for (int i = 0; i < 400 && quiet == 0; ++i) {
		std::this_thread::sleep_for(5ms);
		quiet = (*s)->metrics().host.quietTicks;
	}
	(*s)->stop();

	EXPECT_GT(quiet, 0u);
}

TEST(Scheduler, ASpinReportEndsTheQuietTick)
{
	SchedulerOptions o;
	o.policy = PolicyKind::Express;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	const int vm = *(*s)->addVm("pv", 2, nullptr);
	ASSERT_TRUE((*s)->start().ok());
	for (int i = 0; i < 400 && (*s)->metrics().host.quietTicks == 0; ++i)
		std::this_thread::sleep_for(5ms);
	ASSERT_GT((*s)->metrics().host.quietTicks, 0u);
	const uint64_t fastBefore = fastTicks(**s);

	// Quiet ticks alone never add fast ones; after a report, the next 100 ticks are fast.
	uint64_t fastAfter = fastBefore;
	for (int i = 0; i < 400 && fastAfter < fastBefore + 10; ++i) {
		(*s)->notifyLongSpin(vm, 0, 1, 7);
		std::this_thread::sleep_for(5ms);
		fastAfter = fastTicks(**s);
	}
	(*s)->stop();

	EXPECT_GE(fastAfter, fastBefore + 10);
}

} // namespace
} // namespace spindle::sched

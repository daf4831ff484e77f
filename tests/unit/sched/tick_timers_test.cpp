// The scheduler's timers: an unchanged expiry costs no system call, and the tick slows down
// while nothing spins and speeds up at the first spin report (real Scheduler, real threads;
// counts of ticks, never their timing).

#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
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

// A tick aligned far ahead, then given back the period it had: it must be re-armed, or it
// would wait for the aligned time.
TEST(TickTimers, APeriodAfterAnAlignedTickReArmsItEvenWhenUnchanged)
{
	auto timers = TickTimers::create();
	ASSERT_TRUE(timers.ok()) << timers.error().message();
	ASSERT_TRUE(timers->setTickPeriod(1'000'000).ok());
	const uint64_t inAMinute = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
						       std::chrono::steady_clock::now().time_since_epoch()).count()) +
				   60'000'000'000;
	ASSERT_TRUE(timers->alignTick(inAMinute, 1'000'000).ok());

	ASSERT_TRUE(timers->setTickPeriod(1'000'000).ok());

	pollfd fd{ timers->tickFd(), POLLIN, 0 };
	EXPECT_EQ(poll(&fd, 1, 5000), 1) << "the tick still waits for the aligned time";
}

// Ticks that ran at the fast tick.
uint64_t fastTicks(const Scheduler &s)
{
	const HostMetrics m = s.metrics().host;
	return m.ticks - m.quietTicks;
}

// A started scheduler with VMs of two vCPUs (one unless told) and no thread attached: nothing
// spins unless the test reports it.
std::unique_ptr<Scheduler> startedScheduler(SchedulerOptions o = {}, PolicyKind policy = PolicyKind::Express,
					    int vms = 1)
{
	o.policy = policy;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	EXPECT_TRUE(s.ok()) << s.error().message();
	if (!s.ok())
		return nullptr;
	for (int vm = 0; vm < vms; ++vm)
		(void)*(*s)->addVm("vm" + std::to_string(vm), 2, nullptr);
	EXPECT_TRUE((*s)->start().ok());
	return std::move(*s);
}

// Waits up to 2 s for a quiet tick; returns how many there were.
uint64_t waitForQuietTicks(const Scheduler &s)
{
	for (int i = 0; i < 400 && s.metrics().host.quietTicks == 0; ++i)
		std::this_thread::sleep_for(5ms);
	return s.metrics().host.quietTicks;
}

TEST(Scheduler, ASchedulerWithNothingSpinningSlowsToTheQuietTick)
{
	std::unique_ptr<Scheduler> s = startedScheduler();
	ASSERT_NE(s, nullptr);

	const uint64_t quiet = waitForQuietTicks(*s);
	s->stop();

	EXPECT_GT(quiet, 0u);
}

TEST(Scheduler, AQuietTickNoLongerThanTheFastOneTurnsQuietTicksOff)
{
	SchedulerOptions o;
	o.tickNs = 2'000'000;
	o.quietTickNs = 1'000'000; // valid on its own, shorter than --sched-tick
	std::unique_ptr<Scheduler> s = startedScheduler(o);
	ASSERT_NE(s, nullptr);

	// Well past the 100 quiet-making ticks (200 ms at 2 ms).
	for (int i = 0; i < 400 && s->metrics().host.ticks < 150; ++i)
		std::this_thread::sleep_for(5ms);
	const HostMetrics m = s->metrics().host;
	s->stop();

	EXPECT_GE(m.ticks, 150u);
	EXPECT_EQ(m.quietTicks, 0u);
}

TEST(Scheduler, ASpinReportEndsTheQuietTick)
{
	std::unique_ptr<Scheduler> s = startedScheduler();
	ASSERT_NE(s, nullptr);
	ASSERT_GT(waitForQuietTicks(*s), 0u);
	const uint64_t fastBefore = fastTicks(*s);

	// Quiet ticks alone never add fast ones; after a report, the next 100 ticks are fast.
	uint64_t fastAfter = fastBefore;
	for (int i = 0; i < 400 && fastAfter < fastBefore + 10; ++i) {
		s->notifyLongSpin(0, 0, 1, 7);
		std::this_thread::sleep_for(5ms);
		fastAfter = fastTicks(*s);
	}
	s->stop();

	EXPECT_GE(fastAfter, fastBefore + 10);
}

TEST(Scheduler, SpinReportsUnderCfsAreCountedAndKeepTheQuietTick)
{
	std::unique_ptr<Scheduler> s = startedScheduler({}, PolicyKind::Cfs);
	ASSERT_NE(s, nullptr);
	ASSERT_GT(waitForQuietTicks(*s), 0u);
	const uint64_t fastBefore = fastTicks(*s);

	// 300 ms of reports: with coboost every one of those ticks would be fast.
	for (int i = 0; i < 60; ++i) {
		s->notifyLongSpin(0, 0, 1, 7);
		std::this_thread::sleep_for(5ms);
	}
	const SchedulerMetrics m = s->metrics();
	s->stop();

	EXPECT_GT(m.core.vms[0].totals.spins[static_cast<unsigned>(SpinSource::Pv)], 0u); // drained at quiet ticks
	EXPECT_EQ(fastTicks(*s), fastBefore);
}

// Two VMs under gang, no thread attached: turns of a quantum (10 ms), and the tick comes at their
// ends, not every 1 ms.
TEST(Scheduler, GangTicksAtTurnEndsNotAtTheFastTick)
{
	std::unique_ptr<Scheduler> s = startedScheduler({}, PolicyKind::Gang, 2);
	ASSERT_NE(s, nullptr);

	std::this_thread::sleep_for(300ms);
	const HostMetrics m = s->metrics().host;
	s->stop();

	EXPECT_GT(m.turnTicks, 5u);
	EXPECT_LT(m.ticks, 100u) << "300 ms at the 1 ms fast tick would be about 300";
}

} // namespace
} // namespace spindle::sched

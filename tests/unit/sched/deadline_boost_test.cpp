// A deadline boost is ended by the kernel, not by Spindle: on real threads, a boost that nobody
// ever ends (the scheduler thread starved, stopped or gone) runs no longer than its budget plus
// one scheduler tick, and then no more than its reserved bandwidth. And the Scheduler with
// deadline boosts raises its own thread and restores every thread. And leaving a
// deadline boost gives the kernel back its bandwidth, even from a blocked thread.
//
// The one timing test in the scheduler's unit suite, with a bound loose enough for a noisy
// machine: the kernel notices an exhausted runtime at a tick (HZ=100 at worst: 10 ms), and the
// burst is measured in the thread's own CPU time, which, like the kernel's deadline accounting,
// leaves out the time a hypervisor stole. Skips where SCHED_DEADLINE is refused.

#include <gtest/gtest.h>

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/syscall.h>

#include "common/clock.h"
#include "sched/actuator.h"
#include "sched/scheduler.h"
#include "tests/support/deadline_bandwidth.h"

namespace spindle::sched {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kWorstTickNs = 10'000'000;   // HZ=100
constexpr uint64_t kMeasurementSlackNs = 2'000'000;

uint64_t threadCpuNs()
{
	timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(t.tv_nsec);
}

// Spins, and records the CPU time of each uninterrupted run (a wall-clock gap ends a run).
class BurstThread
{
public:
	BurstThread()
	{
		thread_ = std::thread([this] {
			tid_.store(gettid());
			uint64_t previous = monotonicNs(), runStartCpu = threadCpuNs(), lastCpu = runStartCpu;
			while (!stop_.load(std::memory_order_relaxed)) {
				const uint64_t now = monotonicNs(), cpu = threadCpuNs();
				if (now - previous > 50'000) { // was off its CPU in between
					if (recording_.load(std::memory_order_relaxed))
						longestRunCpu_.store(std::max(longestRunCpu_.load(), lastCpu - runStartCpu));
					runStartCpu = cpu;
				}
				previous = now;
				lastCpu = cpu;
				cpuNow_.store(cpu, std::memory_order_relaxed);
			}
		});
		while (tid_.load() == 0)
			std::this_thread::yield();
	}
	~BurstThread()
	{
		stop_.store(true);
		thread_.join();
	}
	pid_t tid() const { return tid_.load(); }
	void record() { recording_.store(true); }
	uint64_t longestRunCpuNs() const { return longestRunCpu_.load(); }
	uint64_t cpuNs() const { return cpuNow_.load(); }

private:
	std::atomic<pid_t> tid_{ 0 };
	std::atomic<bool> stop_{ false }, recording_{ false };
	std::atomic<uint64_t> longestRunCpu_{ 0 }, cpuNow_{ 0 };
	std::thread thread_;
};

// Normal-class spinners on every CPU, so a throttled deadline thread really stops running.
struct Competitors {
	std::atomic<bool> stop{ false };
	std::vector<std::thread> threads;
	Competitors()
	{
		for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); ++i)
			threads.emplace_back([this] {
				while (!stop.load(std::memory_order_relaxed))
					;
			});
	}
	~Competitors()
	{
		stop = true;
		for (std::thread &t : threads)
			t.join();
	}
};

// Boosts the thread; "" if it is now a deadline task, else why not (and it is restored).
std::string boostWithDeadline(HostActuator &actuator, pid_t tid, uint64_t budget)
{
	Status s = actuator.boost(tid, budget);
	if (s && !actuator.fifoFallbackUsed())
		return "";
	actuator.restoreAll();
	return "SCHED_DEADLINE refused here: " + (s ? std::string("admission control full") : s.error().message());
}

TEST(DeadlineBoost, PeriodIsTwiceTheRuntimeAndNeverShorterThanATick)
{
	EXPECT_EQ(deadlineBoostPeriodNs(50'000), kDeadlineBoostMinPeriodNs);
	EXPECT_EQ(deadlineBoostPeriodNs(1'000'000), kDeadlineBoostMinPeriodNs);
	EXPECT_EQ(deadlineBoostPeriodNs(8'000'000), 16'000'000u);
	EXPECT_GE(kDeadlineBoostMinPeriodNs, 10'000'000u) << "the tick at HZ=100";
}

// A thread to boost among competitors on every CPU, and nobody to end its boost: the kernel's
// own bound, the backstop under the boost alarm (boost_alarm_test.cpp tests the alarm).
class UnendedDeadlineBoost : public ::testing::Test
{
protected:
	void SetUp() override { ASSERT_TRUE(actuator.track(boosted.tid(), 0).ok()); }

	static constexpr uint64_t budget = 1'000'000;
	Competitors competitors;
	BurstThread boosted;
	// Without the boost alarm, which would end the boost before the kernel has to.
	HostActuator actuator{ BoostClass::Deadline, 10, HostActuator::Alarms::Off };
};

TEST_F(UnendedDeadlineBoost, RunsNoLongerThanItsBudgetPlusATick)
{
	boosted.record();
	const std::string refused = boostWithDeadline(actuator, boosted.tid(), budget);
	if (!refused.empty())
		GTEST_SKIP() << refused;
	std::this_thread::sleep_for(200ms); // nobody unboosts: the scheduler thread is "starved"
	const uint64_t longest = boosted.longestRunCpuNs();
	actuator.restoreAll();

	EXPECT_GT(longest, 0u) << "the boosted thread never ran, or never stopped";
	EXPECT_LE(longest, budget + kWorstTickNs + kMeasurementSlackNs);
}

TEST_F(UnendedDeadlineBoost, GetsNoMoreThanItsReservedBandwidth)
{
	const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());

	const std::string refused = boostWithDeadline(actuator, boosted.tid(), budget);
	if (!refused.empty())
		GTEST_SKIP() << refused;
	const uint64_t startCpu = boosted.cpuNs(), start = monotonicNs();
	std::this_thread::sleep_for(300ms);
	const uint64_t usedCpu = boosted.cpuNs() - startCpu, elapsed = monotonicNs() - start;
	actuator.restoreAll();

	// Without the kernel's throttle it would have a CPU to itself: `elapsed`. With it, at most
	// runtime per period, plus the one overrun the kernel lets through before it debits.
	const double bandwidth = static_cast<double>(budget) / static_cast<double>(deadlineBoostPeriodNs(budget));
	EXPECT_LE(static_cast<double>(usedCpu),
		  bandwidth * static_cast<double>(elapsed) + static_cast<double>(budget + kWorstTickNs + kMeasurementSlackNs))
		<< "used " << usedCpu << " ns of CPU in " << elapsed << " ns; competitors on " << cpus << " CPUs";
}

uint32_t policyOf(pid_t tid)
{
	auto attr = getSchedAttr(tid);
	return attr.ok() ? attr->policy : ~0u;
}

TEST(DeadlineBoost, SchedulerThreadRisesToFifoWhileBoostsLastAndEveryThreadIsRestored)
{
	SchedulerOptions o;
	o.policy = PolicyKind::Coboost;
	o.detectPle = false;
	o.boostClass = BoostClass::Deadline;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	std::atomic<pid_t> schedulerTid{ 0 };
	(*s)->setThreadStartHook([&schedulerTid] { schedulerTid.store(static_cast<pid_t>(syscall(SYS_gettid))); });
	std::vector<std::unique_ptr<BurstThread>> vcpus;
	for (unsigned i = 0; i < 4; ++i)
		vcpus.push_back(std::make_unique<BurstThread>());
	int id = *(*s)->addVm("spinners", 4, nullptr);
	for (unsigned i = 0; i < 4; ++i)
		ASSERT_TRUE((*s)->attachVcpuThread(id, i, vcpus[i]->tid()).ok());
	ASSERT_TRUE((*s)->start().ok());
	while (schedulerTid.load() == 0)
		std::this_thread::yield();

	uint32_t seenPolicy = SCHED_OTHER;
	for (int i = 0; i < 400 && seenPolicy != SCHED_FIFO; ++i) {
		(*s)->reportSpin(id, 0);
		std::this_thread::sleep_for(100us);
		seenPolicy = policyOf(schedulerTid.load());
	}
	(*s)->stop();
	const SchedulerMetrics metrics = (*s)->metrics();

	if (metrics.host.fifoFallback || metrics.host.boosts.realtimeSwitches == 0)
		GTEST_SKIP() << "SCHED_DEADLINE boosts refused here (permission or admission control)";
	EXPECT_EQ(seenPolicy, uint32_t(SCHED_FIFO)) << "not a deadline task: see Scheduler::keepAheadOfBoostsLocked";
	for (auto &t : vcpus)
		EXPECT_EQ(policyOf(t->tid()), uint32_t(SCHED_OTHER));
	// Every vCPU thread once, and every return of the scheduler thread from SCHED_FIFO.
	EXPECT_EQ(metrics.host.boosts.restores, 4 + metrics.host.boosts.realtimeSwitches / 2);
	EXPECT_EQ(metrics.host.boosts.restoreMismatches, 0u);
}

TEST(DeadlineBoost, EndingTheBoostOfABlockedThreadGivesBackItsBandwidth)
{
	const std::optional<long> before = test::deadlineBandwidthInUse();
	if (!before)
		GTEST_SKIP() << "/sys/kernel/debug/sched/debug is not readable here (debugfs, root)";
	std::atomic<bool> stop{ false };
	std::atomic<pid_t> tid{ 0 };
	std::thread sleeper([&] {
		tid.store(gettid());
		while (!stop.load())
			std::this_thread::sleep_for(20ms); // blocked nearly all the time
	});
	while (tid.load() == 0)
		std::this_thread::yield();
	// Alarms off: the alarm would wake it and it would leave the class itself, running.
	HostActuator actuator(BoostClass::Deadline, 10, HostActuator::Alarms::Off);
	ASSERT_TRUE(actuator.track(tid.load(), -1).ok());
	const std::string refused = boostWithDeadline(actuator, tid.load(), 1'000'000);
	if (!refused.empty()) {
		stop = true;
		sleeper.join();
		GTEST_SKIP() << refused;
	}
	std::this_thread::sleep_for(5ms); // asleep in its 20 ms

	const Status unboosted = actuator.unboost(tid.load());
	const long after = test::deadlineBandwidthSettlingTo(*before);
	stop = true;
	sleeper.join();

	ASSERT_TRUE(unboosted.ok()) << unboosted.error().message();
	EXPECT_EQ(after, *before) << "the kernel kept the bandwidth of a deadline task that left the class while "
				     "blocked: every such unboost shrinks what the host can admit until its root "
				     "domain is rebuilt";
}

} // namespace
} // namespace spindle::sched

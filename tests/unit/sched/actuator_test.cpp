// The actuator on real threads: ordinary threads stand in for vCPU threads. These assert state
// changes read back from the kernel, never timings, and skip where the machine forbids a policy.

#include <gtest/gtest.h>

#include <atomic>

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "sched/actuator.h"
#include "tests/support/files.h"
#include "tests/support/proc_threads.h"
#include "tests/support/sched_threads.h"

namespace spindle::sched {
namespace {

using namespace std::chrono_literals;
using test::affinityOf;
using test::policyOf;
using test::SpinThread;
using test::withSchedulingCallsIntercepted;

bool needsTwoCpus()
{
	return std::thread::hardware_concurrency() < 2;
}

// A thread's scheduling state as /proc shows it: read independently of the actuator's own
// read-back (which uses sched_getattr and sched_getaffinity).
struct ProcSchedState {
	long nice = 0, rtPriority = 0, policy = -1; // stat fields 19, 40, 41
	std::string cpusAllowed;                    // status: Cpus_allowed_list
	bool operator==(const ProcSchedState &) const = default;
};

std::ostream &operator<<(std::ostream &out, const ProcSchedState &s)
{
	return out << "{policy " << s.policy << ", rt priority " << s.rtPriority << ", nice " << s.nice << ", CPUs "
		   << s.cpusAllowed << "}";
}

ProcSchedState procSchedState(pid_t tid)
{
	const std::string task = "/proc/self/task/" + std::to_string(tid);
	ProcSchedState state;
	const std::string stat = test::readFile(task + "/stat");
	// Fields after the command name (which may hold spaces) start at field 3.
	std::istringstream fields(stat.substr(stat.rfind(')') + 2));
	std::string field;
	for (int n = 3; fields >> field && n <= 41; ++n) {
		if (n == 19)
			state.nice = std::stol(field);
		else if (n == 40)
			state.rtPriority = std::stol(field);
		else if (n == 41)
			state.policy = std::stol(field);
	}
	std::istringstream status(test::readFile(task + "/status"));
	for (std::string line; std::getline(status, line);)
		if (line.rfind("Cpus_allowed_list:", 0) == 0)
			state.cpusAllowed = line.substr(line.find_first_not_of(" \t", 18));
	return state;
}

TEST(Actuator, TrackPinsToTheHomeCpu)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);

	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, DeadlineBoostMakesADeadlineTaskAndUnboostRestoresThePin)
{
	SpinThread t = test::sleepingThread();
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	Status s = a.boost(t.tid(), 50'000'000);
	if (!s && s.error().code() == EPERM)
		GTEST_SKIP() << "no permission for real-time policies here";
	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(policyOf(t.tid()), a.fifoFallbackUsed() ? uint32_t(SCHED_FIFO) : uint32_t(SCHED_DEADLINE));

	ASSERT_TRUE(a.unboost(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_OTHER));
	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, DeadlineBoostWithoutAlarmHasTheBudgetAsRuntime)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10, HostActuator::Alarms::Off);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	if (!a.boost(t.tid(), 500'000).ok() || a.fifoFallbackUsed())
		GTEST_SKIP() << "SCHED_DEADLINE is not available here";

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->runtime, 500'000u);
	EXPECT_EQ(attr->period, deadlineBoostPeriodNs(500'000));
}

TEST(Actuator, DeadlineBoostWithAnAlarmReservesMoreThanTheBudgetSoTheAlarmComesFirst)
{
	SpinThread t = test::sleepingThread();
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	constexpr uint64_t budget = 20'000'000;

	if (!a.boost(t.tid(), budget).ok() || a.fifoFallbackUsed())
		GTEST_SKIP() << "SCHED_DEADLINE is not available here";

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	const uint64_t runtime = budget + HostActuator::kDeadlineRuntimeMarginNs;
	EXPECT_EQ(attr->runtime, runtime);
	EXPECT_EQ(attr->period, deadlineBoostPeriodNs(runtime));
	EXPECT_GT(runtime, budget + HostActuator::kAlarmGraceNs);
}

TEST(Actuator, FifoBoostIsPinnedAtTheConfiguredPriority)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 7);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	Status s = a.boost(t.tid(), 5'000'000'000); // long: its alarm must not end it before the read
	if (!s && s.error().code() == EPERM)
		GTEST_SKIP() << "no permission for SCHED_FIFO here";
	ASSERT_TRUE(s.ok()) << s.error().message();

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->policy, uint32_t(SCHED_FIFO));
	EXPECT_EQ(attr->priority, 7u);
	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, GangTurnIsFifoInTheDeadlineClassToo)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 7);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	Action turn{ .kind = ActionKind::Boost, .who = { 0, 0 }, .budgetNs = 12'000'000, .reason = BoostReason::Gang };

	Status s = a.apply(turn, t.tid());
	if (!s && s.error().code() == EPERM)
		GTEST_SKIP() << "no permission for SCHED_FIFO here";
	ASSERT_TRUE(s.ok()) << s.error().message();

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->policy, uint32_t(SCHED_FIFO));
	EXPECT_EQ(attr->priority, 7u);
	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
	EXPECT_FALSE(a.fifoFallbackUsed()); // chosen, not fallen back to
}

TEST(Actuator, MoveWhileFifoBoostedRepinsNow)
{
	if (needsTwoCpus())
		GTEST_SKIP() << "needs two CPUs";
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 7);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	if (!a.boost(t.tid(), 5'000'000'000).ok())
		GTEST_SKIP() << "no permission for SCHED_FIFO here";

	ASSERT_TRUE(a.move(t.tid(), 1).ok());

	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 1 });
}

TEST(Actuator, DeprioritizeMakesTheThreadIdleClassUntilRestored)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	ASSERT_TRUE(a.deprioritize(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_IDLE));

	ASSERT_TRUE(a.restoreClass(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_OTHER));
}

TEST(Actuator, DeprioritizingAnIdleThreadAgainMakesNoSystemCall)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.deprioritize(t.tid()).ok());
	Status again;

	withSchedulingCallsIntercepted(EPERM, [&] { again = a.deprioritize(t.tid()); });

	EXPECT_TRUE(again.ok()); // a sched_setattr would have failed with EPERM
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_IDLE));
}

TEST(Actuator, DebtNiceIsAppliedOverTheOriginalNice)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	ASSERT_TRUE(a.setNice(t.tid(), 5).ok());

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->nice, 5);
}

TEST(Actuator, UnknownThreadIsAnError)
{
	HostActuator a(BoostClass::Deadline, 10);

	Status s = a.boost(999999, 1000);

	ASSERT_FALSE(s.ok());
	EXPECT_EQ(s.error().code(), ESRCH);
}

TEST(Actuator, RestoreAllPutsEveryThreadBack)
{
	SpinThread t1, t2, t3;
	std::vector<int> original = affinityOf(t1.tid());
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t1.tid(), 0).ok());
	ASSERT_TRUE(a.track(t2.tid(), 0).ok());
	ASSERT_TRUE(a.track(t3.tid(), 0).ok());
	(void)a.boost(t1.tid(), 1'000'000);
	ASSERT_TRUE(a.deprioritize(t2.tid()).ok());
	ASSERT_TRUE(a.setNice(t3.tid(), 7).ok());

	a.restoreAll();

	for (const SpinThread *t : { &t1, &t2, &t3 }) {
		auto attr = getSchedAttr(t->tid());
		ASSERT_TRUE(attr.ok());
		EXPECT_EQ(attr->policy, uint32_t(SCHED_OTHER));
		EXPECT_EQ(attr->nice, 0);
		EXPECT_EQ(affinityOf(t->tid()), original);
	}
	EXPECT_EQ(a.tracked(), 0u);
}

TEST(Actuator, RestoredThreadReadsBackAsRecordedAndIsCounted)
{
	SpinThread t;
	const ProcSchedState original = procSchedState(t.tid());
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());
	ASSERT_TRUE(a.deprioritize(t.tid()).ok());
	ASSERT_NE(procSchedState(t.tid()), original);

	a.restoreAll();

	EXPECT_EQ(procSchedState(t.tid()), original);
	EXPECT_EQ(a.restores(), 1u);
	EXPECT_EQ(a.restoreMismatches(), 0u);
}

TEST(Actuator, RestoreTheKernelRefusesIsCountedAsAMismatch)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());

	withSchedulingCallsIntercepted(EPERM, [&] { a.restoreAll(); });

	EXPECT_EQ(a.restores(), 1u);
	EXPECT_EQ(a.restoreMismatches(), 1u);
	EXPECT_EQ(a.tracked(), 0u); // forgotten all the same: the originals cannot be applied later
}

TEST(Actuator, RestoreThatSilentlyDoesNothingIsAMismatchAndUntrackSaysSo)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());
	Status untracked;

	withSchedulingCallsIntercepted(0, [&] { untracked = a.untrack(t.tid()); });

	ASSERT_FALSE(untracked.ok());
	EXPECT_NE(untracked.error().message().find("reads back"), std::string::npos) << untracked.error().message();
	EXPECT_EQ(a.restoreMismatches(), 1u);
}

TEST(Actuator, ThreadThatExitedCountsAsNeitherRestoreNorMismatch)
{
	auto t = std::make_unique<SpinThread>();
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t->tid(), 0).ok());
	const pid_t tid = t->tid();
	t.reset(); // joined
	ASSERT_TRUE(test::waitUntilReaped(tid)); // its tid no longer exists

	a.restoreAll();

	EXPECT_EQ(a.restores(), 0u);
	EXPECT_EQ(a.restoreMismatches(), 0u);
}

TEST(Actuator, BoostGetsAStarvedThreadRunning)
{
	if (needsTwoCpus())
		GTEST_SKIP() << "needs two CPUs (the test runs on the other one)";
	// Keep this test's own thread off CPU 0, where a SCHED_FIFO hog starves a normal thread.
	cpu_set_t mine, other;
	sched_getaffinity(0, sizeof(mine), &mine);
	CPU_ZERO(&other);
	CPU_SET(1, &other);
	ASSERT_EQ(sched_setaffinity(0, sizeof(other), &other), 0);
	SpinThread hog, waiter;
	HostActuator a(BoostClass::Fifo, 20);
	ASSERT_TRUE(a.track(hog.tid(), 0).ok());
	ASSERT_TRUE(a.track(waiter.tid(), 0).ok());
	SchedAttr hogAttr;
	hogAttr.policy = SCHED_FIFO;
	hogAttr.priority = 5;
	if (!setSchedAttr(hog.tid(), hogAttr).ok()) {
		sched_setaffinity(0, sizeof(mine), &mine);
		GTEST_SKIP() << "no permission for SCHED_FIFO here";
	}
	std::this_thread::sleep_for(5ms);
	uint64_t before = waiter.loops();
	std::this_thread::sleep_for(20ms);
	bool starved = waiter.loops() == before; // unless RT throttling's 5% window hit just now

	ASSERT_TRUE(a.boost(waiter.tid(), 100'000'000).ok());
	uint64_t atBoost = waiter.loops();
	std::this_thread::sleep_for(20ms);
	uint64_t after = waiter.loops();

	a.restoreAll();
	sched_setaffinity(0, sizeof(mine), &mine);
	if (!starved)
		GTEST_SKIP() << "the waiter was not starved before the boost (RT throttling window)";
	EXPECT_GT(after, atBoost);
}

} // namespace
} // namespace spindle::sched

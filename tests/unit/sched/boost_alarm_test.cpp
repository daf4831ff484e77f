// The boost alarm: a boost nobody ends is ended by the boosted thread itself, on time, in either
// class, back on its pin; an unboost in time leaves nothing to go off; a signal that is not the
// alarm's own does nothing; a blocked thread goes back to its wait. Real threads; the tests that
// need CAP_SYS_NICE skip without it. Timing bounds are loose (a noisy 2-CPU machine):
// `bench/sched/boost-alarm-latency` measures how late the alarms really are.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/clock.h"
#include "sched/actuator.h"
#include "sched/boost_alarm.h"
#include "tests/support/sched_threads.h"

namespace spindle::sched {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMs = 1'000'000;
// Room for a loaded machine; the benchmark gives the real figures.
constexpr uint64_t kLateSlackNs = 20 * kMs;

using test::SpinThread;

SchedAttr attrOf(pid_t tid)
{
	auto attr = getSchedAttr(tid);
	return attr.ok() ? *attr : SchedAttr{};
}

AlarmReturn niceReturn(int nice)
{
	AlarmReturn back;
	back.attr.policy = SCHED_OTHER;
	back.attr.nice = nice;
	return back;
}

// Polls until the thread's policy is not `boosted` any more; the time it took, or 0 after 1 s.
uint64_t waitUntilNotPolicy(pid_t tid, uint32_t boosted, uint64_t since)
{
	while (monotonicNs() - since < 1'000 * kMs) {
		if (attrOf(tid).policy != boosted)
			return monotonicNs() - since;
		std::this_thread::sleep_for(50us);
	}
	return 0;
}

bool waitUntilEnded(const BoostAlarm &alarm)
{
	for (int i = 0; i < 2000 && alarm.endedAtNs() == 0; ++i)
		std::this_thread::sleep_for(500us);
	return alarm.endedAtNs() != 0;
}

cpu_set_t onlyCpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return set;
}

bool affinityIs(pid_t tid, int cpu)
{
	cpu_set_t now;
	cpu_set_t want = onlyCpu(cpu);
	return sched_getaffinity(tid, sizeof(now), &now) == 0 && CPU_EQUAL(&now, &want);
}

// ---- BoostAlarm alone (no privilege needed: the way back is a higher nice) -----------------

TEST(BoostAlarm, CreateRefusesAThreadIdThatIsNoThread)
{
	EXPECT_FALSE(BoostAlarm::create(0).ok());
	EXPECT_FALSE(BoostAlarm::create(-7).ok());
}

TEST(BoostAlarm, ArmingAnAlarmThatWasNeverCreatedFails)
{
	BoostAlarm none;

	const Status armed = none.arm(monotonicNs() + kMs, niceReturn(1));

	EXPECT_FALSE(armed.ok());
	EXPECT_EQ(none.take(), BoostAlarm::Taken::NotArmed);
}

TEST(BoostAlarm, TakingAnUnarmedAlarmSaysNothingWasArmed)
{
	SpinThread spinner;
	auto alarm = BoostAlarm::create(spinner.tid());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();

	EXPECT_EQ(alarm->take(), BoostAlarm::Taken::NotArmed);
}

TEST(BoostAlarm, GoesOffOnTheThreadItselfAndAppliesItsWayBack)
{
	SpinThread spinner;
	auto alarm = BoostAlarm::create(spinner.tid());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();
	const uint64_t at = monotonicNs() + 2 * kMs;

	ASSERT_TRUE(alarm->arm(at, niceReturn(5)).ok());
	ASSERT_TRUE(waitUntilEnded(*alarm)) << "the alarm never went off";

	EXPECT_EQ(attrOf(spinner.tid()).nice, 5);
	EXPECT_GE(alarm->endedAtNs() + 50'000, at) << "went off before its time";
	EXPECT_LE(alarm->endedAtNs(), at + kLateSlackNs);
	EXPECT_EQ(alarm->take(), BoostAlarm::Taken::EndedByAlarm);
	EXPECT_EQ(alarm->take(), BoostAlarm::Taken::NotArmed) << "an end is reported once";
}

TEST(BoostAlarm, TakenBeforeItsTimeItNeverGoesOff)
{
	SpinThread spinner;
	auto alarm = BoostAlarm::create(spinner.tid());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();
	ASSERT_TRUE(alarm->arm(monotonicNs() + 10 * kMs, niceReturn(6)).ok());

	const BoostAlarm::Taken taken = alarm->take();
	std::this_thread::sleep_for(30ms);

	EXPECT_EQ(taken, BoostAlarm::Taken::Disarmed);
	EXPECT_EQ(alarm->endedAtNs(), 0u);
	EXPECT_EQ(attrOf(spinner.tid()).nice, 0);
}

TEST(BoostAlarm, ASignalThatIsNotItsTimersDoesNothing)
{
	SpinThread spinner;
	auto alarm = BoostAlarm::create(spinner.tid());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();
	ASSERT_TRUE(alarm->arm(monotonicNs() + 10 * kMs, niceReturn(7)).ok());

	// Sent by hand and in time: a forged or early alarm must not end anything.
	ASSERT_EQ(syscall(SYS_tgkill, getpid(), spinner.tid(), boostAlarmSignal()), 0);
	std::this_thread::sleep_for(2ms);

	EXPECT_EQ(attrOf(spinner.tid()).nice, 0);
	EXPECT_EQ(alarm->take(), BoostAlarm::Taken::Disarmed);
}

TEST(BoostAlarm, ReArmedAfterGoingOffItGoesOffAgainOnlyAtItsNewTime)
{
	SpinThread spinner;
	auto alarm = BoostAlarm::create(spinner.tid());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();
	ASSERT_TRUE(alarm->arm(monotonicNs() + kMs, niceReturn(3)).ok());
	ASSERT_TRUE(waitUntilEnded(*alarm));
	ASSERT_EQ(alarm->take(), BoostAlarm::Taken::EndedByAlarm);
	ASSERT_EQ(setSchedAttr(spinner.tid(), niceReturn(2).attr).ok(), true);

	ASSERT_TRUE(alarm->arm(monotonicNs() + 200 * kMs, niceReturn(4)).ok());
	std::this_thread::sleep_for(20ms);

	EXPECT_EQ(attrOf(spinner.tid()).nice, 2) << "went off long before its new time";
	EXPECT_EQ(alarm->take(), BoostAlarm::Taken::Disarmed);
}

TEST(BoostAlarm, ABlockedThreadEndsItAndGoesBackToItsWait)
{
	int fds[2];
	ASSERT_EQ(pipe(fds), 0);
	std::atomic<pid_t> tid{ 0 };
	std::atomic<ssize_t> readResult{ -2 };
	std::thread reader([&] {
		tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
		char byte = 0;
		readResult.store(read(fds[0], &byte, 1));
	});
	while (tid.load() == 0)
		std::this_thread::yield();
	std::this_thread::sleep_for(2ms); // in read() by now
	auto alarm = BoostAlarm::create(tid.load());
	ASSERT_TRUE(alarm.ok()) << alarm.error().message();

	ASSERT_TRUE(alarm->arm(monotonicNs() + kMs, niceReturn(4)).ok());
	const bool ended = waitUntilEnded(*alarm);
	const ssize_t beforeWrite = readResult.load();
	ASSERT_EQ(write(fds[1], "x", 1), 1);
	reader.join();
	close(fds[0]);
	close(fds[1]);

	EXPECT_TRUE(ended);
	EXPECT_EQ(beforeWrite, -2) << "the alarm broke the thread's wait";
	EXPECT_EQ(readResult.load(), 1);
}

// ---- Through the actuator ---------------------------------------------------------------

class ActuatorAlarm : public ::testing::Test
{
protected:
	// Boosts; "" if the boost is in the asked class, else why not (and it is restored).
	std::string boostIn(HostActuator &actuator, BoostClass boostClass, uint64_t budget)
	{
		// Not judged by the thread's policy now: with a short budget, its alarm may have ended
		// the boost already (a deadline spinner can keep this thread off its CPU for a tick).
		const Status s = actuator.boost(spinner.tid(), budget);
		if (s && !actuator.fifoFallbackUsed())
			return "";
		actuator.restoreAll();
		return std::string(boostClass == BoostClass::Fifo ? "SCHED_FIFO" : "SCHED_DEADLINE") +
		       " refused here: " + (s ? std::string("fell back") : s.error().message());
	}

	// The boosted spinner is pinned to CPU 0: this thread measures from CPU 1 when there is one.
	void SetUp() override
	{
		sched_getaffinity(0, sizeof(saved_), &saved_);
		if (std::thread::hardware_concurrency() >= 2) {
			cpu_set_t other = onlyCpu(1);
			sched_setaffinity(0, sizeof(other), &other);
		}
	}
	void TearDown() override { sched_setaffinity(0, sizeof(saved_), &saved_); }

	SpinThread spinner;
	cpu_set_t saved_{};
};

TEST_F(ActuatorAlarm, AFifoBoostNobodyEndsEndsItselfAfterItsBudget)
{
	HostActuator actuator(BoostClass::Fifo, 10);
	ASSERT_TRUE(actuator.track(spinner.tid(), 0).ok());
	const uint64_t start = monotonicNs();
	if (const std::string refused = boostIn(actuator, BoostClass::Fifo, kMs); !refused.empty())
		GTEST_SKIP() << refused;

	ASSERT_NE(waitUntilNotPolicy(spinner.tid(), SCHED_FIFO, start), 0u) << "still boosted after 1 s";
	EXPECT_TRUE(actuator.unboost(spinner.tid()).ok());
	// The handler's own time: this thread's polling may itself be held up by the boost.
	const uint64_t lasted = actuator.lastEndedByAlarmNs(spinner.tid()) - start;

	EXPECT_GE(lasted, kMs) << "ended before its budget";
	EXPECT_LE(lasted, kMs + HostActuator::kAlarmGraceNs + kLateSlackNs) << "lasted " << lasted << " ns";
	EXPECT_TRUE(affinityIs(spinner.tid(), 0));
	EXPECT_EQ(actuator.alarmEnds(), 1u);
}

TEST_F(ActuatorAlarm, ADeadlineBoostNobodyEndsEndsItselfBackOnItsPin)
{
	HostActuator actuator(BoostClass::Deadline, 10);
	ASSERT_TRUE(actuator.track(spinner.tid(), 0).ok());
	const uint64_t start = monotonicNs();
	if (const std::string refused = boostIn(actuator, BoostClass::Deadline, kMs); !refused.empty())
		GTEST_SKIP() << refused;

	ASSERT_NE(waitUntilNotPolicy(spinner.tid(), SCHED_DEADLINE, start), 0u) << "still boosted after 1 s";
	const uint64_t countedBefore = actuator.alarmEnds();
	// The unboost waits for the handler, which re-pins after it has changed the class.
	EXPECT_TRUE(actuator.unboost(spinner.tid()).ok());
	const uint64_t lasted = actuator.lastEndedByAlarmNs(spinner.tid()) - start;

	EXPECT_GE(lasted, kMs);
	EXPECT_LE(lasted, kMs + HostActuator::kAlarmGraceNs + kLateSlackNs) << "lasted " << lasted << " ns";
	EXPECT_EQ(attrOf(spinner.tid()).policy, uint32_t(SCHED_OTHER));
	EXPECT_TRUE(affinityIs(spinner.tid(), 0)) << "a deadline boost leaves its pin; the alarm puts it back";
	EXPECT_EQ(countedBefore, 0u) << "counted when the owner takes it, not before";
	EXPECT_EQ(actuator.alarmEnds(), 1u);
}

TEST_F(ActuatorAlarm, AMoveDuringADeadlineBoostIsWhereTheAlarmPutsItBack)
{
	if (std::thread::hardware_concurrency() < 2)
		GTEST_SKIP() << "needs two CPUs";
	HostActuator actuator(BoostClass::Deadline, 10);
	ASSERT_TRUE(actuator.track(spinner.tid(), 0).ok());
	const uint64_t start = monotonicNs();
	if (const std::string refused = boostIn(actuator, BoostClass::Deadline, 3 * kMs); !refused.empty())
		GTEST_SKIP() << refused;

	ASSERT_TRUE(actuator.move(spinner.tid(), 1).ok());
	ASSERT_NE(waitUntilNotPolicy(spinner.tid(), SCHED_DEADLINE, start), 0u);
	ASSERT_TRUE(actuator.unboost(spinner.tid()).ok()); // waits for the handler's re-pin

	EXPECT_TRUE(affinityIs(spinner.tid(), 1));
	EXPECT_EQ(actuator.alarmEnds(), 1u);
}

TEST_F(ActuatorAlarm, AnUnboostInTimeLeavesNothingToGoOff)
{
	HostActuator actuator(BoostClass::Fifo, 10);
	ASSERT_TRUE(actuator.track(spinner.tid(), 0).ok());
	if (const std::string refused = boostIn(actuator, BoostClass::Fifo, 5 * kMs); !refused.empty())
		GTEST_SKIP() << refused;

	ASSERT_TRUE(actuator.unboost(spinner.tid()).ok());
	ASSERT_TRUE(actuator.setNice(spinner.tid(), 3).ok());
	std::this_thread::sleep_for(20ms);

	EXPECT_EQ(actuator.alarmEnds(), 0u);
	EXPECT_EQ(actuator.lastEndedByAlarmNs(spinner.tid()), 0u);
	EXPECT_EQ(attrOf(spinner.tid()).nice, 3) << "a stale alarm put back an older nice";
}

TEST_F(ActuatorAlarm, WithAlarmsOffTheBoostWaitsForTheScheduler)
{
	HostActuator actuator(BoostClass::Fifo, 10, HostActuator::Alarms::Off);
	ASSERT_TRUE(actuator.track(spinner.tid(), 0).ok());
	if (const std::string refused = boostIn(actuator, BoostClass::Fifo, kMs); !refused.empty())
		GTEST_SKIP() << refused;

	std::this_thread::sleep_for(10ms);
	const uint32_t policy = attrOf(spinner.tid()).policy;
	actuator.restoreAll();

	EXPECT_EQ(policy, uint32_t(SCHED_FIFO));
}

} // namespace
} // namespace spindle::sched

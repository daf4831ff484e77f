// ThreadStates over real threads: the /proc source everywhere, the switch source where the host
// allows system-wide perf events (root or CAP_PERFMON). The tracker's state machine on
// hand-made events is in switch_observer_test.cpp.

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "sched/thread_states.h"

namespace spindle::sched {
namespace {

void burnCpu(std::chrono::milliseconds howLong)
{
	const uint64_t until = clockNs(CLOCK_THREAD_CPUTIME_ID) + static_cast<uint64_t>(howLong.count()) * 1'000'000;
	while (clockNs(CLOCK_THREAD_CPUTIME_ID) < until) {
	}
}

int thisCpu()
{
	return sched_getcpu();
}

TEST(ThreadStates, ProcSourceSeesThisThreadRunningAndItsCpuTime)
{
	auto states = ThreadStates::create(SchedulerOptions::ThreadStateSource::Proc, { thisCpu() });
	ASSERT_TRUE(states) << states.error().message();
	const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
	ASSERT_TRUE((*states)->track(self));

	burnCpu(std::chrono::milliseconds(20));
	auto seen = (*states)->observe(std::vector<pid_t>{ self });

	EXPECT_STREQ((*states)->sourceName(), "proc");
	ASSERT_EQ(seen.size(), 1u);
	EXPECT_TRUE(seen[0].present);
	EXPECT_EQ(seen[0].state, VcpuState::Running);
	EXPECT_GE(seen[0].runtimeDeltaNs, 15'000'000u);
}

TEST(ThreadStates, UntrackedThreadIsNotPresent)
{
	auto states = ThreadStates::create(SchedulerOptions::ThreadStateSource::Proc, { thisCpu() });
	ASSERT_TRUE(states);

	auto seen = (*states)->observe(std::vector<pid_t>{ 1 });

	EXPECT_FALSE(seen[0].present);
}

TEST(ThreadStates, SwitchSourceCountsCpuTimeBetweenSleeps)
{
	// Pinned, so every switch of this thread is on the one observed CPU.
	cpu_set_t one, before;
	sched_getaffinity(0, sizeof(before), &before);
	const int cpu = thisCpu();
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	auto states = ThreadStates::create(SchedulerOptions::ThreadStateSource::Switch, { cpu });
	if (!states) {
		sched_setaffinity(0, sizeof(before), &before);
		GTEST_SKIP() << "no sched_switch events here: " << states.error().message();
	}
	const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
	ASSERT_TRUE((*states)->track(self));

	// Drained after every burst, as the scheduler's tick does (a ring holds some 30 ms of events).
	uint64_t runtimeNs = 0;
	std::vector<ThreadStates::Observation> seen;
	for (int i = 0; i < 4; ++i) {
		burnCpu(std::chrono::milliseconds(5));
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
		seen = (*states)->observe(std::vector<pid_t>{ self });
		runtimeNs += seen[0].runtimeDeltaNs;
	}
	// One more sleep: a last stint whose switch-in went missing is counted at its switch-out.
	std::this_thread::sleep_for(std::chrono::milliseconds(2));
	seen = (*states)->observe(std::vector<pid_t>{ self });
	runtimeNs += seen[0].runtimeDeltaNs;
	sched_setaffinity(0, sizeof(before), &before);

	const std::string why = "events " + std::to_string((*states)->switchEvents()) + ", resyncs " +
				std::to_string((*states)->resyncs()) + ", cpu " + std::to_string(cpu);
	EXPECT_STREQ((*states)->sourceName(), "switch");
	EXPECT_GE((*states)->switchEvents(), 4u) << why;
	ASSERT_TRUE(seen[0].present) << why;
	// No assertion on the state: the kernel drops switches around idle here (switch_observer.h),
	// and a lost switch-in leaves a running thread halted or runnable until its next switch.
	EXPECT_GE(runtimeNs, 18'000'000u) << why;
	EXPECT_LT(runtimeNs, 200'000'000u) << why;
}

} // namespace
} // namespace spindle::sched

// Thread states from sched:sched_switch: the format file, the raw record and the tracker's state
// machine on hand-made events (ThreadStates over the real rings: thread_states_test.cpp).

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "sched/switch_observer.h"

namespace spindle::sched {
namespace {

// This host's format (Linux 6.x), with the offsets moved to show they are read, not assumed.
constexpr const char *kFormat =
	"name: sched_switch\nID: 372\nformat:\n"
	"\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
	"\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
	"\tfield:pid_t prev_pid;\toffset:28;\tsize:4;\tsigned:1;\n"
	"\tfield:long prev_state;\toffset:40;\tsize:8;\tsigned:1;\n"
	"\tfield:char next_comm[16];\toffset:48;\tsize:16;\tsigned:0;\n"
	"\tfield:pid_t next_pid;\toffset:64;\tsize:4;\tsigned:1;\n"
	"\nprint fmt: \"prev_comm=%s prev_pid=%d\"\n";

std::vector<uint8_t> rawSwitch(const SwitchFormat &f, int32_t prev, uint64_t state, int32_t next)
{
	std::vector<uint8_t> raw(f.nextPid + 4 + 4, 0);
	std::memcpy(raw.data() + f.prevPid, &prev, 4);
	std::memcpy(raw.data() + f.prevState, &state, f.prevStateSize);
	std::memcpy(raw.data() + f.nextPid, &next, 4);
	return raw;
}

SwitchEvent sw(uint64_t t, pid_t prev, bool prevRunnable, pid_t next, int cpu = 0)
{
	return { t, cpu, prev, prevRunnable, next };
}

TEST(SwitchFormat, FieldOffsetsAreReadFromTheFormatFile)
{
	auto f = parseSwitchFormat(kFormat);

	ASSERT_TRUE(f) << f.error().message();
	EXPECT_EQ(f->prevPid, 28u);
	EXPECT_EQ(f->prevState, 40u);
	EXPECT_EQ(f->prevStateSize, 8u);
	EXPECT_EQ(f->nextPid, 64u);
}

TEST(SwitchFormat, FormatWithoutNextPidIsRejected)
{
	std::string text = kFormat;
	text.replace(text.find("next_pid"), 8, "next_tid");

	EXPECT_FALSE(parseSwitchFormat(text));
}

TEST(SwitchFormat, PrevStateOfTwoBytesIsRejected)
{
	std::string text = kFormat;
	const size_t at = text.find("size:8", text.find("prev_state"));
	text.replace(at, 6, "size:2");

	EXPECT_FALSE(parseSwitchFormat(text));
}

TEST(DecodeSwitch, SleepingPrevIsNotRunnable)
{
	SwitchFormat f;
	auto raw = rawSwitch(f, 100, 0x1 /* S */, 200);

	auto e = decodeSwitch(raw, f, 5, 1);

	ASSERT_TRUE(e);
	EXPECT_EQ(e->prevPid, 100);
	EXPECT_EQ(e->nextPid, 200);
	EXPECT_FALSE(e->prevRunnable);
	EXPECT_EQ(e->cpu, 1);
	EXPECT_EQ(e->timeNs, 5u);
}

TEST(DecodeSwitch, StateZeroIsRunnable)
{
	SwitchFormat f;
	auto raw = rawSwitch(f, 100, 0, 200);

	EXPECT_TRUE(decodeSwitch(raw, f, 0, 0)->prevRunnable);
}

TEST(DecodeSwitch, PreemptedMarkerAboveTheStateBitsIsRunnable)
{
	SwitchFormat f;
	auto raw = rawSwitch(f, 100, 0x100 /* R+ */, 200);

	EXPECT_TRUE(decodeSwitch(raw, f, 0, 0)->prevRunnable);
}

TEST(DecodeSwitch, FourBytePrevStateIsRead)
{
	SwitchFormat f;
	f.prevStateSize = 4;
	auto raw = rawSwitch(f, 100, 0x2 /* D */, 200);

	EXPECT_FALSE(decodeSwitch(raw, f, 0, 0)->prevRunnable);
}

TEST(DecodeSwitch, RecordShorterThanTheFormatIsRejected)
{
	SwitchFormat f;
	auto raw = rawSwitch(f, 100, 0, 200);
	raw.resize(f.nextPid + 3);

	EXPECT_FALSE(decodeSwitch(raw, f, 0, 0));
}

TEST(SwitchTracker, PreemptedThreadIsRunnableOnItsCpu)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 1000);

	t.apply(sw(2000, 7, true, 8, 1));

	EXPECT_EQ(t.view(7, 3000)->state, VcpuState::Runnable);
	EXPECT_EQ(t.view(7, 3000)->cpu, 1);
}

TEST(SwitchTracker, SleepingThreadIsHalted)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 1000);

	t.apply(sw(2000, 7, false, 8));

	EXPECT_EQ(t.view(7, 3000)->state, VcpuState::Halted);
}

TEST(SwitchTracker, CpuTimeCountsOnlyRunningStints)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 1000);

	t.apply(sw(1500, 7, true, 8));  // ran 500
	t.apply(sw(4000, 8, true, 7));  // waited 2500
	t.apply(sw(4200, 7, false, 8)); // ran 200

	EXPECT_EQ(t.view(7, 9000)->runtimeNs, 700u);
}

TEST(SwitchTracker, RunningThreadsViewIncludesTheCurrentStint)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(sw(1000, 8, false, 7));

	auto v = t.view(7, 1600);

	EXPECT_EQ(v->state, VcpuState::Running);
	EXPECT_EQ(v->runtimeNs, 600u);
}

TEST(SwitchTracker, UntrackedThreadsAreIgnored)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.apply(sw(1000, 8, false, 9, 1));

	EXPECT_FALSE(t.view(8, 2000));
	EXPECT_EQ(t.view(7, 2000)->state, VcpuState::Running);
	EXPECT_TRUE(t.takeSuspects().empty());
}

TEST(SwitchTracker, SwitchesThatAddUpRaiseNoSuspect)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.apply(sw(100, 7, true, 8));
	t.apply(sw(200, 8, false, 7));
	t.apply(sw(300, 7, false, 0));

	EXPECT_TRUE(t.takeSuspects().empty());
}

TEST(SwitchTracker, LostSwitchInWithNoStintSeenIsCreditedTheWholeGap)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(100, 7, true, 8)); // 8 -> 7 is never delivered

	t.apply(sw(500, 7, false, 0));

	EXPECT_TRUE(t.takeSuspects().empty()); // 400 ns off at most: well inside the budget
	EXPECT_EQ(t.view(7, 600)->state, VcpuState::Halted);
	EXPECT_EQ(t.view(7, 600)->runtimeNs, 500u); // 0-100, and 100-500 at most
	EXPECT_EQ(t.unverifiedNs(7), 400u);
	EXPECT_EQ(t.missedSwitches(), 1u);
}

TEST(SwitchTracker, LostSwitchInIsCreditedTheThreadsTypicalStint)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 1, 0);
	t.apply(sw(1'000, 0, false, 7, 1));
	t.apply(sw(1'100, 7, false, 0, 1)); // a whole stint of 100 ns, both ends seen
	// 0 -> 7 at some point before 9,000 is never delivered (nor its wake-up)

	t.apply(sw(9'000, 7, false, 0, 1));

	EXPECT_EQ(t.view(7, 9'500)->runtimeNs, 200u); // 100 + its usual 100, not the 7,900 gap
	EXPECT_EQ(t.unverifiedNs(7), 7'900u);
	EXPECT_TRUE(t.takeSuspects().empty());
}

TEST(SwitchTracker, GuessedStintIsNeverLongerThanTheGap)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 1, 0);
	t.apply(sw(1'000, 0, false, 7, 1));
	t.apply(sw(1'500, 7, false, 0, 1)); // usual stint 500 ns
	t.apply(sw(1'600, 9, false, 0, 1)); // CPU 1 idle again; 0 -> 7 lost

	t.apply(sw(1'650, 7, false, 0, 1));

	EXPECT_EQ(t.view(7, 2'000)->runtimeNs, 550u);
}

TEST(SwitchTracker, GuessedStintsMakeASuspectOnceTheyPassTheBudget)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	const uint64_t gap = SwitchTracker::kUnverifiedBudgetNs / 2 + 1;
	t.apply(sw(100, 9, false, 0));       // idle; 0 -> 7 lost
	t.apply(sw(100 + gap, 7, false, 0)); // half the budget
	EXPECT_TRUE(t.takeSuspects().empty());

	t.apply(sw(100 + 2 * gap, 7, false, 0)); // lost again: past the budget

	EXPECT_EQ(t.takeSuspects(), std::vector<pid_t>{ 7 });
}

TEST(SwitchTracker, SetRuntimeClearsWhatTheGuessesMayBeOffBy)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(sw(100, 9, false, 0));
	t.apply(sw(5'000, 7, false, 0));

	t.setRuntime(7, 300, 6'000);

	EXPECT_EQ(t.unverifiedNs(7), 0u);
	EXPECT_EQ(t.view(7, 7'000)->runtimeNs, 300u);
}

TEST(SwitchTracker, LostSwitchOutOfIdleRunsTheThreadFromItsWakeUp)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(100, 7, false, 0));         // sleeps: 100 ns run
	t.apply(WakeupEvent{ 300, 7, 0 });     // 0 -> 7 at about 300 is never delivered

	t.apply(sw(500, 7, false, 0));

	EXPECT_TRUE(t.takeSuspects().empty());
	EXPECT_EQ(t.view(7, 600)->runtimeNs, 300u);
	EXPECT_EQ(t.missedSwitches(), 1u);
}

TEST(SwitchTracker, CpuSwitchingAwayFromAnotherThreadMakesTheRunningOneASuspect)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0); // 7 -> 8 is never delivered

	t.apply(sw(500, 8, false, 9));

	EXPECT_EQ(t.takeSuspects(), std::vector<pid_t>{ 7 });
	EXPECT_EQ(t.view(7, 600)->state, VcpuState::Runnable);
	EXPECT_FALSE(t.runningOn(0));
}

TEST(SwitchTracker, ThreadLeavingAnotherCpuThanBelievedIsNoLongerRunningOnTheFirst)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 1, 0); // then moved to CPU 0 unseen

	t.apply(sw(500, 7, false, 0, 0));

	EXPECT_FALSE(t.runningOn(1));
	EXPECT_EQ(t.view(7, 600)->state, VcpuState::Halted);
}

TEST(SwitchTracker, SwitchOnACpuIdThatIsNoCpuIsIgnored)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);

	t.apply(sw(100, 0, false, 7, SwitchTracker::kMaxCpus));
	t.apply(sw(200, 0, false, 7, -3));

	EXPECT_EQ(t.view(7, 300)->state, VcpuState::Halted);
	EXPECT_FALSE(t.runningOn(SwitchTracker::kMaxCpus));
	EXPECT_FALSE(t.runningOn(-3));
}

TEST(SwitchTracker, EventsOlderThanAResyncAreSkipped)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);
	t.resync(7, VcpuState::Halted, 0, 1000, 800);

	t.apply(sw(900, 8, false, 7)); // already in what /proc said at 1000

	EXPECT_EQ(t.view(7, 1100)->state, VcpuState::Halted);
	EXPECT_EQ(t.view(7, 1100)->runtimeNs, 800u);
}

TEST(SwitchTracker, SwitchInOfAThreadRunningElsewhereMakesItASuspect)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(sw(100, 8, false, 7, 0)); // its switch-out on CPU 0 is never delivered

	t.apply(sw(500, 8, false, 7, 1));

	EXPECT_EQ(t.takeSuspects(), std::vector<pid_t>{ 7 });
	EXPECT_EQ(t.view(7, 600)->cpu, 1);
	EXPECT_FALSE(t.runningOn(0));
	EXPECT_EQ(t.runningOn(1), std::optional<pid_t>(7));
}

TEST(SwitchTracker, VcpuDisplacedByTheObserverStaysRunningWithoutCpuTime)
{
	SwitchTracker t;
	t.setObserver(50);
	t.track(7, VcpuState::Running, 0, 0);

	t.apply(sw(1000, 7, true, 50)); // the scheduler thread's tick takes CPU 0

	EXPECT_EQ(t.view(7, 1010)->state, VcpuState::Running);
	EXPECT_EQ(t.view(7, 1010)->runtimeNs, 1000u);
	EXPECT_EQ(t.runningOn(0), std::optional<pid_t>(7));
}

TEST(SwitchTracker, DisplacedVcpuResumesWhenTheObserverGivesItTheCpuBack)
{
	SwitchTracker t;
	t.setObserver(50);
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(1000, 7, true, 50));

	t.apply(sw(1020, 50, false, 7));

	EXPECT_EQ(t.view(7, 1100)->runtimeNs, 1080u); // 0-1000 and 1020-1100
	EXPECT_TRUE(t.takeSuspects().empty());
	EXPECT_EQ(t.missedSwitches(), 0u);
}

TEST(SwitchTracker, DisplacedVcpuIsRunnableWhenAnotherThreadGetsTheCpu)
{
	SwitchTracker t;
	t.setObserver(50);
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(1000, 7, true, 50));

	t.apply(sw(1020, 50, false, 8));

	EXPECT_EQ(t.view(7, 1100)->state, VcpuState::Runnable);
	EXPECT_EQ(t.view(7, 1100)->runtimeNs, 1000u);
	EXPECT_FALSE(t.runningOn(0));
}

TEST(SwitchTracker, SleepingVcpuIsNotDisplaced)
{
	SwitchTracker t;
	t.setObserver(50);
	t.track(7, VcpuState::Running, 0, 0);

	t.apply(sw(1000, 7, false, 50)); // it slept, and the observer happened to run next

	EXPECT_EQ(t.view(7, 1100)->state, VcpuState::Halted);
}

TEST(SwitchTracker, SuspectsAreTakenOnce)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(sw(100, 8, false, 7, 0));
	t.apply(sw(200, 9, false, 7, 1)); // running on 0 and on 1
	t.apply(sw(300, 9, false, 7, 2)); // and on 2

	EXPECT_EQ(t.takeSuspects(), std::vector<pid_t>{ 7 });
	EXPECT_TRUE(t.takeSuspects().empty());
}

TEST(SwitchTracker, ResyncWithCpuTimeReplacesTheCount)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.resync(7, VcpuState::Running, 0, 300, 5000);

	EXPECT_EQ(t.view(7, 400)->runtimeNs, 5100u);
}

TEST(SwitchTracker, WokenHaltedThreadBecomesRunnable)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);

	t.sawRunnable(7, 1);

	EXPECT_EQ(t.view(7, 10)->state, VcpuState::Runnable);
	EXPECT_EQ(t.view(7, 10)->cpu, 1);
}

TEST(SwitchTracker, SawRunnableLeavesARunningThreadRunning)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.sawRunnable(7, 1);

	EXPECT_EQ(t.view(7, 10)->state, VcpuState::Running);
	EXPECT_EQ(t.view(7, 10)->cpu, 0);
}

TEST(SwitchTracker, ResyncKeepsTheCpuTimeSeen)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.resync(7, VcpuState::Runnable, 1, 300);

	EXPECT_EQ(t.view(7, 1000)->runtimeNs, 300u);
	EXPECT_EQ(t.view(7, 1000)->state, VcpuState::Runnable);
}

TEST(SwitchTracker, UntrackForgetsTheThread)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.untrack(7);

	EXPECT_FALSE(t.view(7, 10));
}

TEST(SwitchTracker, LostSwitchOutLeavesTheStateInDoubt)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0); // 7 -> 8 is never delivered

	t.apply(sw(500, 8, false, 9));

	EXPECT_TRUE(t.stateInDoubt(7));
}

TEST(SwitchTracker, LostWakeUpAndSwitchInSeenAtTheSwitchOutLeaveNoDoubtAboutTheState)
{
	// The common loss on our PVM host: a sleeper's wake-up and switch-in out of idle both go
	// missing; its switch-out arrives, and with it the state.
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(sw(100, 9, false, 0)); // CPU 0 goes idle; 0 -> 7 is never delivered

	t.apply(sw(500, 7, false, 0));

	EXPECT_FALSE(t.stateInDoubt(7));
	EXPECT_EQ(t.view(7, 600)->state, VcpuState::Halted);
}

TEST(SwitchTracker, WakeUpEndsTheDoubtAboutAState)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(500, 8, false, 9)); // 7's switch-out on CPU 0 was lost

	t.apply(WakeupEvent{ 600, 7, 1 });

	EXPECT_FALSE(t.stateInDoubt(7));
	EXPECT_EQ(t.view(7, 700)->state, VcpuState::Runnable);
	EXPECT_EQ(t.view(7, 700)->cpu, 1);
}

TEST(SwitchTracker, SwitchOfTheThreadEndsTheDoubtAboutItsState)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);
	t.apply(sw(500, 8, false, 9));

	t.apply(sw(600, 9, false, 7));

	EXPECT_FALSE(t.stateInDoubt(7));
	EXPECT_EQ(t.view(7, 700)->state, VcpuState::Running);
}

TEST(SwitchTracker, SetRuntimeReplacesTheCpuTimeAndKeepsTheState)
{
	SwitchTracker t;
	t.track(7, VcpuState::Halted, 0, 0);
	t.apply(WakeupEvent{ 100, 7, 1 });

	t.setRuntime(7, 80, 200);

	const auto v = t.view(7, 300);
	EXPECT_EQ(v->runtimeNs, 80u);
	EXPECT_EQ(v->state, VcpuState::Runnable);
	EXPECT_EQ(v->cpu, 1);
}

TEST(SwitchTracker, SetRuntimeOfARunningThreadCountsItsStintFromThen)
{
	SwitchTracker t;
	t.track(7, VcpuState::Running, 0, 0);

	t.setRuntime(7, 50, 200);

	EXPECT_EQ(t.view(7, 300)->runtimeNs, 150u); // 50, and 200-300
	EXPECT_EQ(t.view(7, 300)->state, VcpuState::Running);
}

} // namespace
} // namespace spindle::sched

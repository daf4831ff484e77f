// The scheduler on real KVM: two lockbench VMs overcommitted on a smaller pool, under each
// policy. Runs complete with mutual exclusion intact, and the metrics show the policy's own
// actions. Counts are only asserted to be zero or non-zero: hosts differ by orders of magnitude
// (native ring-3 guests, emulated ring-0 guests, TCG), so magnitudes mean nothing here. The
// tests that need PAUSE exits are in ple_kvm_test.cpp.

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/kvm/policy_run.h"
#include "tests/support/deadline_bandwidth.h"
#include "tests/support/elf_builder.h"
#include "tests/support/kvm_main.h"
#include "tests/support/run_command.h"

using namespace spindle::test;

TEST(Policies, CfsCompletesAndNeverBoosts)
{
	PolicyRun run = runPolicy("cfs");
	expectCompletedWithMutualExclusion(run);
	EXPECT_EQ(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "cpu_us"), 0u) << "the share guard's input, measured under every policy";
}

TEST(Policies, YieldCompletesAndYields)
{
	PolicyRun run = runPolicy("yield");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "yields"), 0u) << run.metrics;
}

TEST(Policies, CoboostDetectsSpinsThroughPvAndBoosts)
{
	PolicyRun run = runPolicy("coboost");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_pv"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
	EXPECT_GT(sumAfter(run.metrics, "\"scheduler_realtime_switches\":"), 0u)
		<< "the scheduler thread must run above its boosts while they last: " << run.metrics;
}

TEST(Policies, CoboostWithDeadlineBoostsRestoresEveryThread)
{
	PolicyRun run = runPolicy("coboost", { "--boost-class", "deadline" });
	expectCompletedWithMutualExclusion(run);
	if (run.metrics.find("\"fifo_fallback\":true") != std::string::npos)
		GTEST_SKIP() << "SCHED_DEADLINE boosts refused on this host (admission control or permission)";
	EXPECT_GT(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
	const uint64_t attached = sumAfter(run.metrics, "\"vcpu_threads_attached\":");
	const uint64_t switches = sumAfter(run.metrics, "\"scheduler_realtime_switches\":");
	EXPECT_EQ(attached, 4u) << run.metrics;
	EXPECT_GT(switches, 0u) << "the scheduler thread rises to SCHED_FIFO with deadline boosts too: " << run.metrics;
	// Every vCPU thread, and every return of the scheduler thread from SCHED_FIFO.
	EXPECT_EQ(sumAfter(run.metrics, "\"restores\":"), attached + switches / 2) << run.metrics;
	EXPECT_EQ(sumAfter(run.metrics, "\"restore_mismatches\":"), 0u) << run.metrics;
}

// Gang turns are long deadline boosts that end as vCPU threads block and exit: the runs that
// hung (a vCPU thread that emptied its own reservation was throttled for good while it held the
// scheduler's lock) and leaked bandwidth (threads leaving the class while blocked) were these.
TEST(Policies, GangWithDeadlineBoostsCompletesAndGivesTheKernelItsBandwidthBack)
{
	const std::optional<long> before = deadlineBandwidthInUse();
	PolicyRun first = runPolicy("gang", { "--boost-class", "deadline" });
	PolicyRun second = runPolicy("gang", { "--boost-class", "deadline" });

	expectCompletedWithMutualExclusion(first);
	expectCompletedWithMutualExclusion(second);
	if (!before)
		GTEST_SKIP() << "the runs completed; the bandwidth check needs debugfs's sched/debug (root, debugfs)";
	EXPECT_EQ(deadlineBandwidthSettlingTo(*before), *before)
		<< "deadline bandwidth the runs reserved is still counted after they ended";
}

TEST(Policies, ExtendGrantsExtensionsToHolders)
{
	// An extension needs a tick that finds a running vCPU holding the lock. In the overcommitted
	// two-vCPU VMs the ticket is nearly always handed to a preempted waiter, so the running vCPU
	// spins: runs saw 0 to 19 grants, 1 or 2 since the tick backs off. One-vCPU VMs have no
	// waiters; with 50 us holds and 50 us between them 40-45% of the ticks find a holder, and a
	// re-read of the hint while the extension runs finds the release.
	const std::string holderVm = "lockbench,cpus=1,args=\"lock=pvticket cs=50us think=50us duration=2s\"";
	PolicyRun run = runVms("extend", "0", { holderVm, holderVm }, {});
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "extensions_granted"), 0u) << run.metrics;
	// Hints are re-read every --extend-poll while an extension runs, so releases end them.
	EXPECT_GT(totalOf(run.metrics, "extensions_ended_early"), 0u) << run.metrics;
}

TEST(Policies, ExpressRunsNamedVcpus)
{
	PolicyRun run = runPolicy("express");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "express_runs"), 0u) << run.metrics;
}

TEST(Policies, GangTakesTurns)
{
	PolicyRun run = runPolicy("gang", {"--gang-quantum", "5ms"});
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(sumAfter(run.metrics, "\"gang_turns\":"), 0u) << run.metrics;
}

TEST(Policies, GangLeavesHolesInTheTurnsOfAVmSmallerThanThePool)
{
	PolicyRun run = runVms("gang", "0-1", {kPvticketVm2, "lockbench,cpus=1,args=\"lock=pvticket duration=2s\""},
			       {"--gang-quantum", "5ms"});

	expectCompletedWithMutualExclusion(run);
	// vm0 fills the pool except while its vCPUs halt at the very end of the run.
	EXPECT_GT(sumAfter(vmMetrics(run.metrics, "vm1"), "\"gang_hole_cpu_us\":"),
		  sumAfter(vmMetrics(run.metrics, "vm0"), "\"gang_hole_cpu_us\":"))
		<< run.metrics;
}

TEST(Policies, GangReallyCoSchedulesAccordingToTheTrace)
{
	const std::string trace = "/tmp/spindle-sched-gang-trace-" + std::to_string(getpid()) + ".jsonl";

	PolicyRun run = runPolicy("gang", {"--gang-quantum", "5ms", "--trace", trace});

	expectCompletedWithMutualExclusion(run);
	// Every boost belongs to the VM whose turn it is, and a turn boosts all of that VM's vCPUs.
	std::ifstream lines(trace);
	std::string line;
	long turnVm = -1;
	unsigned turnsWithBothVcpus = 0, foreignBoosts = 0;
	std::vector<bool> boostedThisTurn(2, false);
	auto field = [](const std::string &text, const std::string &key) {
		const size_t at = text.find("\"" + key + "\":");
		return at == std::string::npos ? -1L : std::strtol(text.c_str() + at + key.size() + 3, nullptr, 10);
	};
	while (std::getline(lines, line)) {
		if (line.find("\"ev\":\"gang_turn\"") != std::string::npos) {
			if (boostedThisTurn[0] && boostedThisTurn[1])
				++turnsWithBothVcpus;
			turnVm = field(line, "vm");
			boostedThisTurn.assign(2, false);
		} else if (line.find("\"ev\":\"boost\"") != std::string::npos && turnVm >= 0) {
			if (field(line, "vm") != turnVm)
				++foreignBoosts;
			else if (long vcpu = field(line, "vcpu"); vcpu == 0 || vcpu == 1)
				boostedThisTurn[static_cast<size_t>(vcpu)] = true;
		}
	}
	EXPECT_EQ(foreignBoosts, 0u);
	EXPECT_GT(turnsWithBothVcpus, 0u);
	unlink(trace.c_str());
}

TEST(Policies, GangRefusesAVmLargerThanThePool)
{
	auto run = runCommand({spindleBinary(), "run", "--pcpus", "0", "--policy", "gang", "--vm", "lockbench,cpus=2"}, 60);

	EXPECT_EQ(run.status, 2);
	EXPECT_NE(run.err.find("gang needs a pool at least as large as each VM"), std::string::npos) << run.err;
}

TEST(Policies, AGuestThatNeverWritesItsHintSlotWaitsOnNobody)
{
	// Before the host initialised the slots, zeroes read as "waiting on vCPU 0" and express
	// boosted vCPU 0 about 1,100 times in 2 s for a guest that never touched its slot.
	const std::string guest = "/tmp/spindle-sched-nohints-" + std::to_string(getpid()) + ".elf";
	{
		std::ofstream file(guest, std::ios::binary);
		const auto elf = ElfBuilder::withCode(0x200000, spinForeverCode()).build();
		file.write(reinterpret_cast<const char *>(elf.data()), static_cast<std::streamsize>(elf.size()));
	}

	PolicyRun run = runVms("express", "0", {"kernel=" + guest + ",cpus=2"}, {"--timeout", "1"});

	EXPECT_EQ(run.command.status, 124) << run.command.err;
	EXPECT_EQ(totalOf(run.metrics, "express_runs"), 0u) << run.metrics;
	EXPECT_EQ(totalOf(run.metrics, "spins_hint"), 0u) << run.metrics;
	EXPECT_NE(run.metrics.find("\"waiting_on\":null"), std::string::npos) << run.metrics;
	EXPECT_EQ(run.metrics.find("\"waiting_on\":0"), std::string::npos) << run.metrics;
	unlink(guest.c_str());
}

TEST(Policies, AdaptiveCompletesAndActs)
{
	PolicyRun run = runPolicy("adaptive");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "boosts") + totalOf(run.metrics, "extensions_granted") +
			  totalOf(run.metrics, "express_runs"),
		  0u)
		<< run.metrics;
}

TEST(Policies, AdaptiveTakesTurnsWhenSpinningVmsAreAsWideAsThePool)
{
	// Two VMs of two vCPUs on two CPUs: both spin and both keep the pool busy (rule 4).
	PolicyRun run = runVms("adaptive", "0-1", {kPvticketVm2, kPvticketVm2}, {});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(sumAfter(run.metrics, "\"gang_turns\":"), 0u) << run.metrics;
}

TEST(Policies, AdaptiveTakesTurnsBetweenSleepyVms)
{
	// Each vCPU halts half the time, so a VM rarely has both vCPUs ready: the turns go by its
	// width, and the other VM's threads fill what its halted vCPUs leave of its turn.
	const std::string sleepy = "lockbench,cpus=2,args=\"lock=pvticket idle=2ms busy=2ms duration=2s\"";
	PolicyRun run = runVms("adaptive", "0-1", {sleepy, sleepy}, {});

	expectCompletedWithMutualExclusion(run);
	// Turns through most of the run: 2 s of 10 ms turns is 200 (PVM: 192-196), and 170 leaves
	// room for the start. By the ready count at each tick, turns came in phases (PVM: 125 in a
	// 2 s run, 103 in a 3 s one).
	EXPECT_GE(sumAfter(run.metrics, "\"gang_turns\":"), 170u) << run.metrics;
}

TEST(Signals, SigtermStopsEveryVmRestoresAndWritesResults)
{
	const std::string results = "/tmp/spindle-sched-sigterm-" + std::to_string(getpid()) + ".json";
	pid_t child = fork();
	if (child == 0) {
		execl(spindleBinary().c_str(), spindleBinary().c_str(), "run", "--pcpus", "0", "--policy", "coboost",
		      "--results", results.c_str(), "--vm", "lockbench,cpus=2,args=\"duration=600s\"", nullptr);
		_exit(127);
	}
	sleep(2);
	const double start = nowSeconds();
	kill(child, SIGTERM);
	int status = 0;
	waitpid(child, &status, 0);
	const double elapsed = nowSeconds() - start;

	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 130);
	EXPECT_LT(elapsed, 5.0) << "stops within a second on real hardware; emulation is slower";
	EXPECT_NE(readFile(results).find("\"vm\":\"vm0\""), std::string::npos);
	unlink(results.c_str());
}

SPINDLE_KVM_TEST_MAIN()

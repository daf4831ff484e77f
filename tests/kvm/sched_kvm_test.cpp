// The scheduler on real KVM: two lockbench VMs overcommitted on a smaller pool, under each
// policy. Runs complete with mutual exclusion intact, and the metrics show the policy's own
// actions. Counts are only asserted to be zero or non-zero: under software emulation every PAUSE
// exits and exits are slow, so magnitudes mean nothing here.

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/kvm_main.h"
#include "tests/support/run_command.h"

using namespace spindle::test;

namespace {

// The file with every space removed: the VMM writes "key": value, the scheduler "key":value.
std::string readCompact(const std::string &path)
{
	std::ifstream file(path);
	std::stringstream text;
	text << file.rdbuf();
	std::string compact;
	for (char c : text.str())
		if (c != ' ')
			compact += c;
	return compact;
}

uint64_t sumAfter(const std::string &json, const std::string &needle)
{
	uint64_t sum = 0;
	for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1))
		sum += std::strtoull(json.c_str() + pos + needle.size(), nullptr, 10);
	return sum;
}

// Sum of a field over the scheduler's per-VM totals.
uint64_t totalOf(const std::string &json, const std::string &key)
{
	uint64_t sum = 0;
	const std::string needle = "\"totals\":{";
	for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1)) {
		const std::string totals = json.substr(pos, json.find('}', pos) - pos);
		sum += sumAfter(totals, "\"" + key + "\":");
	}
	return sum;
}

struct PolicyRun {
	CommandResult command;
	std::string results;
	std::string metrics;
};

// Runs `spindle run` with the given VM specs on the pool and reads back its results and metrics.
PolicyRun runVms(const std::string &policy, const std::string &pool, const std::vector<std::string> &vms,
		 const std::vector<std::string> &extra)
{
	const std::string base = "/tmp/spindle-sched-" + std::to_string(getpid()) + "-" + policy;
	std::vector<std::string> args = {spindleBinary(), "run", "--pcpus", pool, "--policy", policy, "--spin-threshold", "16",
					 "--results", base + "-results.json", "--metrics", base + "-metrics.json"};
	for (const std::string &vm : vms) {
		args.push_back("--vm");
		args.push_back(vm);
	}
	args.insert(args.end(), extra.begin(), extra.end());
	PolicyRun run{runCommand(args, 180), {}, {}};
	run.results = readCompact(base + "-results.json");
	run.metrics = readCompact(base + "-metrics.json");
	unlink((base + "-results.json").c_str());
	unlink((base + "-metrics.json").c_str());
	return run;
}

const std::string kPvticketVm2 = "lockbench,cpus=2,args=\"lock=pvticket duration=2s\"";

// Two VMs of two vCPUs on host CPU 0 (4x overcommit; gang on CPUs 0-1, since a VM must fit
// the pool to be gang-scheduled). pvticket so all detectors have input. Two seconds of guest
// time: the guest fails a run in which a vCPU made no progress, and an emulated host under load
// can stall a vCPU for a long while.
PolicyRun runPolicy(const std::string &policy, std::vector<std::string> extra = {})
{
	return runVms(policy, policy == "gang" ? "0-1" : "0", {kPvticketVm2, kPvticketVm2}, extra);
}

// The scheduler's metrics of the VM with this name ("vm0", "vm1", ...), up to the next VM's.
std::string vmMetrics(const std::string &metrics, const std::string &name)
{
	const size_t scheduler = metrics.find("\"scheduler\":");
	const size_t at = scheduler == std::string::npos ? scheduler : metrics.find("\"name\":\"" + name + "\"", scheduler);
	if (at == std::string::npos)
		return {};
	const size_t next = metrics.find("\"name\":\"", at + 1);
	return metrics.substr(at, next == std::string::npos ? std::string::npos : next - at);
}

void expectCompletedWithMutualExclusion(const PolicyRun &run)
{
	ASSERT_EQ(run.command.status, 0) << run.command.err << run.command.out;
	size_t ok = 0;
	for (size_t pos = run.results.find("\"checks_ok\":true"); pos != std::string::npos;
	     pos = run.results.find("\"checks_ok\":true", pos + 1))
		++ok;
	EXPECT_EQ(ok, 2u) << run.results;
}

} // namespace

TEST(Policies, CfsCompletesAndNeverBoosts)
{
	PolicyRun run = runPolicy("cfs");
	expectCompletedWithMutualExclusion(run);
	EXPECT_EQ(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "cpu_us"), 0u) << "the share guard's input, measured under every policy";
}

TEST(Policies, CfsWithPleOffCompletes)
{
	PolicyRun run = runPolicy("cfs", {"--ple", "off"});
	expectCompletedWithMutualExclusion(run);
	EXPECT_EQ(totalOf(run.metrics, "spins_ple"), 0u) << "no PAUSE exits with --ple off";
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

TEST(Policies, CoboostSeesPleWhenPauseExitsAreObservable)
{
	const char *pauseExits = std::getenv("SPINDLE_PAUSE_EXITS");
	if (pauseExits && std::string(pauseExits) == "0")
		GTEST_SKIP() << "PAUSE exits unavailable in this host (SPINDLE_PAUSE_EXITS=0)";
	PolicyRun run = runPolicy("coboost");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_ple") + totalOf(run.metrics, "spins_pattern"), 0u) << run.metrics;
}

TEST(Policies, ExtendGrantsExtensionsToHolders)
{
	PolicyRun run = runPolicy("extend");
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

TEST(Policies, AdaptiveCompletesAndActs)
{
	PolicyRun run = runPolicy("adaptive");
	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "boosts") + totalOf(run.metrics, "extensions_granted") +
			  totalOf(run.metrics, "express_runs"),
		  0u)
		<< run.metrics;
}

TEST(Policies, AdaptiveTakesTurnsWhenSpinningVmsFillThePool)
{
	// Two VMs of two vCPUs on two CPUs: both spin and both keep the pool busy (rule 4).
	PolicyRun run = runVms("adaptive", "0-1", {kPvticketVm2, kPvticketVm2}, {});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(sumAfter(run.metrics, "\"gang_turns\":"), 0u) << run.metrics;
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
	EXPECT_NE(readCompact(results).find("\"vm\":\"vm0\""), std::string::npos);
	unlink(results.c_str());
}

SPINDLE_KVM_TEST_MAIN()

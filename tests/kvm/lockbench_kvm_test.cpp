// The lock guests on real KVM: every lock keeps mutual exclusion and every vCPU progresses;
// the enlightened lock reports long spins under overcommit and leaves its hints consistent.

#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/files.h"
#include "tests/support/kvm_main.h"
#include "tests/support/run_command.h"

using namespace spindle::test;

namespace {

std::string tempPath(const std::string &name)
{
	return "/tmp/spindle-lockbench-" + std::to_string(getpid()) + "-" + name;
}

// Numbers after every occurrence of "key": in a JSON text.
std::vector<uint64_t> numbersAfter(const std::string &json, const std::string &key)
{
	std::vector<uint64_t> values;
	const std::string needle = "\"" + key + "\":";
	for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1))
		values.push_back(std::strtoull(json.c_str() + pos + needle.size(), nullptr, 10));
	return values;
}

struct LockCase {
	const char *lock;
	unsigned cpus;
	const char *mode; // --guest-mode: both profiles must keep every lock correct
};

class EveryLock : public testing::TestWithParam<LockCase>
{
};

} // namespace

TEST_P(EveryLock, KeepsMutualExclusionAndEveryVcpuProgresses)
{
	const LockCase c = GetParam();
	const std::string results = tempPath(std::string(c.lock) + std::to_string(c.cpus) + ".json");

	auto run = runCommand({spindleBinary(), "run", "lockbench", "-c", std::to_string(c.cpus), "--guest-mode", c.mode,
			       "--results", results, "--", std::string("lock=") + c.lock, "duration=500ms", "cs=200ns",
			       "think=500ns"},
			      120);

	ASSERT_EQ(run.status, 0) << run.err << run.out;
	const std::string json = readFile(results);
	EXPECT_NE(json.find("\"checks_ok\":true"), std::string::npos) << json;
	EXPECT_NE(json.find(std::string("\"lock\":\"") + c.lock + "\""), std::string::npos) << json;
	auto ops = numbersAfter(json, "ops");
	ASSERT_EQ(ops.size(), c.cpus) << json;
	for (uint64_t n : ops)
		EXPECT_GT(n, 0u);
	unlink(results.c_str());
}

std::vector<LockCase> everyLockInEveryMode()
{
	std::vector<LockCase> cases;
	for (const char *mode : {"ring0", "ring3"})
		for (const char *lock : {"ticket", "tas", "ttas", "mcs", "qspin", "pvticket", "pvhalt"})
			for (unsigned cpus : {2u, 4u})
				cases.push_back({lock, cpus, mode});
	return cases;
}

INSTANTIATE_TEST_SUITE_P(Locks, EveryLock, testing::ValuesIn(everyLockInEveryMode()),
			 [](const testing::TestParamInfo<LockCase> &info) {
				 return std::string(info.param.lock) + "_" + std::to_string(info.param.cpus) + "vcpus_" +
					info.param.mode;
			 });

TEST(PvTicket, OvercommittedSendsLongSpinsAndLeavesHintsConsistent)
{
	const std::string results = tempPath("pv.json"), metrics = tempPath("pv-metrics.json");

	// Four vCPUs on one host CPU: waiters must spin past a low threshold while the holder or
	// the next in line is preempted. Generous guest time: an emulated host can stall for long.
	auto run = runCommand({spindleBinary(), "run", "lockbench", "-c", "4", "--pcpus", "0", "--spin-threshold", "8",
			       "--results", results, "--metrics", metrics, "--", "lock=pvticket", "duration=1s"},
			      120);

	ASSERT_EQ(run.status, 0) << run.err << run.out;
	const std::string json = readFile(results);
	auto received = numbersAfter(json, "long_spins_received");
	ASSERT_EQ(received.size(), 1u);
	EXPECT_GT(received[0], 0u) << json;
	const std::string m = readFile(metrics);
	auto held = numbersAfter(m, "locks_held");
	ASSERT_EQ(held.size(), 4u) << m;
	for (uint64_t n : held)
		EXPECT_EQ(n, 0u) << m;
	auto seq = numbersAfter(m, "seq");
	ASSERT_EQ(seq.size(), 4u);
	for (uint64_t n : seq)
		EXPECT_GT(n, 0u) << "every vCPU published hints";
	unlink(results.c_str());
	unlink(metrics.c_str());
}

TEST(Lockbench, BarrierAndCpuModesReportWork)
{
	for (const char *mode : {"barrier", "cpu"}) {
		const std::string results = tempPath(std::string(mode) + ".json");
		auto run = runCommand({spindleBinary(), "run", "lockbench", "-c", "2", "--results", results, "--",
				       std::string("mode=") + mode, "duration=200ms"},
				      120);
		ASSERT_EQ(run.status, 0) << mode << ": " << run.err;
		const std::string json = readFile(results);
		EXPECT_NE(json.find(std::string("\"mode\":\"") + mode + "\""), std::string::npos) << json;
		EXPECT_GT(numbersAfter(json, "total_ops").at(0), 0u) << json;
		unlink(results.c_str());
	}
}

TEST(Lockbench, BadParametersAreReportedByTheGuestAndFailTheRun)
{
	auto unknownLock = runCommand({spindleBinary(), "run", "lockbench", "--", "lock=bogus"}, 60);
	auto zeroDuration = runCommand({spindleBinary(), "run", "lockbench", "--", "duration=0s"}, 60);
	auto absurd = runCommand({spindleBinary(), "run", "lockbench", "--", "cs=5s"}, 60);

	EXPECT_NE(unknownLock.status, 0);
	EXPECT_NE(unknownLock.err.find("bogus"), std::string::npos) << unknownLock.err;
	EXPECT_NE(zeroDuration.status, 0);
	EXPECT_NE(zeroDuration.err.find("duration"), std::string::npos) << zeroDuration.err;
	EXPECT_NE(absurd.status, 0);
	EXPECT_NE(absurd.err.find("cs"), std::string::npos) << absurd.err;
}

SPINDLE_KVM_TEST_MAIN()

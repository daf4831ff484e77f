// The spindle binary's answers to bad command lines: one clear line on stderr and exit 2,
// before KVM is touched (so these run on any machine).

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/run_command.h"

using namespace spindle::test;

namespace {

CommandResult runSpindle(std::vector<std::string> args)
{
	args.insert(args.begin(), spindleBinary());
	return runCommand(args, 30);
}

void expectUsageError(std::vector<std::string> args, const std::string &mentions)
{
	auto result = runSpindle(args);
	EXPECT_EQ(result.status, 2) << result.err;
	EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
	EXPECT_NE(result.err.find(mentions), std::string::npos) << result.err;
}

} // namespace

TEST(Cli, NoCommandPrintsUsageAndExitsTwo)
{
	auto result = runSpindle({});
	EXPECT_EQ(result.status, 2);
	EXPECT_NE(result.err.find("Usage: spindle COMMAND"), std::string::npos);
}

TEST(Cli, UnknownCommand)
{
	expectUsageError({"frob"}, "unknown command 'frob'");
}

TEST(Cli, RunHelpListsEveryPolicyAndExitsZero)
{
	auto result = runSpindle({"run", "--help"});
	EXPECT_EQ(result.status, 0);
	for (const char *policy : {"cfs", "yield", "coboost", "extend", "express", "gang", "adaptive"})
		EXPECT_NE(result.out.find(std::string(" ") + policy + " "), std::string::npos) << policy;
}

TEST(Cli, UnknownGuestNamesTheBundledOnes)
{
	expectUsageError({"run", "nosuchguest"}, "bundled: hello");
}

TEST(Cli, TooManyVcpus)
{
	expectUsageError({"run", "hello", "-c", "300"}, "--cpus");
}

TEST(Cli, ImpossibleMemorySizes)
{
	expectUsageError({"run", "hello", "-m", "0"}, "cannot be zero");
	expectUsageError({"run", "hello", "-m", "12345"}, "4 KiB pages");
	expectUsageError({"run", "hello", "-m", "60G", "--vm", "hello"}, "not both");
}

TEST(Cli, GuestMemoryBeyondTheHost)
{
	expectUsageError({"run", "--vm", "hello,mem=62G", "--vm", "hello,mem=62G", "--vm", "hello,mem=62G"},
			 "more than this host has");
}

TEST(Cli, UnreadableKernel)
{
	expectUsageError({"run", "--kernel", "/nonexistent/kernel.elf"}, "/nonexistent/kernel.elf");
}

TEST(Cli, KernelThatIsADirectory)
{
	expectUsageError({"run", "--kernel", "/tmp"}, "not a regular file");
}

TEST(Cli, UnknownPolicy)
{
	expectUsageError({"run", "hello", "--policy", "fastest"}, "unknown scheduler policy 'fastest'");
}

TEST(Cli, SchedulerBoundOutOfRange)
{
	expectUsageError({"run", "hello", "--boost-slice", "10s"}, "--boost-slice");
}

TEST(Cli, PoolNamingACpuThatDoesNotExist)
{
	expectUsageError({"run", "hello", "--pcpus", "4000"}, "4000");
}

TEST(Cli, UnwritableMetricsOrResultsPathIsRefusedBeforeTheRun)
{
	expectUsageError({"run", "hello", "--metrics", "/nonexistent/dir/m.json"}, "/nonexistent/dir/m.json");
	expectUsageError({"run", "hello", "--results", "/nonexistent/dir/r.json"}, "/nonexistent/dir/r.json");
}

TEST(Cli, UnwritableSerialFile)
{
	// Fails at the serial file only where KVM exists; elsewhere at /dev/kvm. Either way one line.
	auto result = runSpindle({"run", "hello", "--serial", "file=/nonexistent/dir/out"});
	EXPECT_NE(result.status, 0);
	EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

// The spindle binary's answers to bad command lines and files: one clear line on stderr and
// exit 2, before KVM is touched (so these run on any machine), and the output files after.

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/elf_builder.h"
#include "tests/support/files.h"
#include "tests/support/json_check.h"
#include "tests/support/run_command.h"

using namespace spindle::test;

namespace {

std::string tempPath(const std::string &name)
{
	return "/tmp/spindle-cli-test-" + std::to_string(getpid()) + "-" + name;
}

struct TempFile {
	TempFile(const std::string &name, const std::vector<uint8_t> &bytes) : path(tempPath(name))
	{
		std::ofstream file(path, std::ios::binary);
		file.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
	}
	~TempFile() { unlink(path.c_str()); }
	std::string path;
};

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

TEST(Cli, CheckRefusesAnUnknownOption)
{
	expectUsageError({"check", "--bogus"}, "--bogus");
}

TEST(Cli, UnknownSeccompModeIsRefused)
{
	expectUsageError({"run", "hello", "--seccomp", "maybe"}, "--seccomp");
}

TEST(Cli, UnknownCommand)
{
	expectUsageError({"frob"}, "unknown command 'frob'");
}

TEST(Cli, VersionFlagPrintsOneLineAndExitsZero)
{
	auto result = runSpindle({"--version"});
	EXPECT_EQ(result.status, 0) << result.err;
	EXPECT_EQ(result.out.rfind("spindle ", 0), 0u) << result.out;
	EXPECT_GT(result.out.size(), std::string("spindle \n").size()) << result.out;
	EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 1) << result.out;
}

TEST(Cli, VersionCommandPrintsWhatTheFlagPrints)
{
	auto command = runSpindle({"version"});
	auto flag = runSpindle({"--version"});
	EXPECT_EQ(command.status, 0);
	EXPECT_EQ(command.out, flag.out);
}

TEST(Cli, VersionWithAnArgumentIsRefused)
{
	expectUsageError({"--version", "extra"}, "takes no arguments");
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
	expectUsageError({"run", "hello", "--serial", "file=/nonexistent/dir/out"}, "/nonexistent/dir/out");
}

TEST(Cli, MalformedKernelIsRefusedBeforeKvmWithOneLine)
{
	auto elf = ElfBuilder::withCode(0x200000, {0xf4}).build();
	elf.resize(100); // truncated inside the program headers
	TempFile kernel("truncated.elf", elf);

	expectUsageError({"run", "--kernel", kernel.path}, "program header");
}

TEST(Cli, GangWithAVmLargerThanThePoolIsRefusedBeforeKvm)
{
	expectUsageError({"run", "--policy", "gang", "--pcpus", "0", "--vm", "hello,cpus=2"}, "gang needs a pool");
}

TEST(Cli, UnwritablePathLeavesNoFileBehind)
{
	const std::string metrics = tempPath("never-written-metrics.json");

	auto result = runSpindle({"run", "hello", "--metrics", metrics, "--results", "/nonexistent/dir/r.json"});

	EXPECT_EQ(result.status, 2);
	EXPECT_NE(access(metrics.c_str(), F_OK), 0) << "a refused run must not create " << metrics;
}

TEST(Cli, FailedRunStillWritesValidMetricsAndResultsWithTheReason)
{
	const std::string metrics = tempPath("failed-metrics.json");
	const std::string results = tempPath("failed-results.json");

	auto result = runSpindle({"run", "nosuchguest", "--metrics", metrics, "--results", results});

	ASSERT_EQ(result.status, 2) << result.err;
	for (const std::string &path : {metrics, results}) {
		const std::string json = readFile(path);
		EXPECT_EQ(JsonChecker::problem(json), "") << path << ": " << json;
		EXPECT_NE(json.find("\"status\":2"), std::string::npos) << json;
		EXPECT_NE(json.find("unknown guest 'nosuchguest'"), std::string::npos) << json;
		unlink(path.c_str());
	}
}

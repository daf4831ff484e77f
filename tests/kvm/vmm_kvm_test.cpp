// The VMM core on real KVM: bundled guests, --kernel, faults, timeouts, metrics.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/elf_builder.h"
#include "tests/support/files.h"
#include "tests/support/json_check.h"
#include "tests/support/kvm_main.h"
#include "tests/support/proc_threads.h"
#include "tests/support/run_command.h"

using namespace spindle::test;

namespace {

CommandResult runSpindle(std::vector<std::string> args, double deadline = 120)
{
	args.insert(args.begin(), spindleBinary());
	return runCommand(args, deadline);
}

std::string writeTemp(const std::string &name, const std::vector<uint8_t> &bytes)
{
	std::string path = "/tmp/spindle-kvm-test-" + std::to_string(getpid()) + "-" + name;
	std::ofstream file(path, std::ios::binary);
	file.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
	return path;
}

void expectHelloFromEveryVcpu(unsigned cpus)
{
	auto result = runSpindle({"run", "hello", "-c", std::to_string(cpus)});

	EXPECT_EQ(result.status, 0) << result.err;
	for (unsigned i = 0; i < cpus; ++i)
		EXPECT_NE(result.out.find("hello from vCPU " + std::to_string(i) + " of " + std::to_string(cpus)),
			  std::string::npos)
			<< result.out;
	EXPECT_NE(result.out.find("all " + std::to_string(cpus) + " vCPUs said hello"), std::string::npos);
}

} // namespace

TEST(BootHello, OneVcpuSaysHelloAndExitsZero)
{
	expectHelloFromEveryVcpu(1);
}

TEST(BootHello, TwoVcpusEachSayHello)
{
	expectHelloFromEveryVcpu(2);
}

TEST(BootHello, FourVcpusEachSayHello)
{
	expectHelloFromEveryVcpu(4);
}

TEST(BootHello, GuestExitCodeIsPassedOn)
{
	auto result = runSpindle({"run", "hello", "-c", "2", "--", "exit=5"});
	EXPECT_EQ(result.status, 5) << result.err;
}

class BootMode : public testing::TestWithParam<const char *>
{
};

TEST_P(BootMode, EveryVcpuSaysHelloAndTheMetricsNameTheMode)
{
	const std::string metrics = "/tmp/spindle-kvm-test-mode-" + std::to_string(getpid()) + ".json";

	auto result = runSpindle({"run", "hello", "-c", "2", "--guest-mode", GetParam(), "--metrics", metrics});

	EXPECT_EQ(result.status, 0) << result.err;
	EXPECT_NE(result.out.find("all 2 vCPUs said hello"), std::string::npos) << result.out;
	EXPECT_NE(readFile(metrics).find("\"guest_mode\":\"" + std::string(GetParam()) + "\""), std::string::npos)
		<< readFile(metrics);
	unlink(metrics.c_str());
}

INSTANTIATE_TEST_SUITE_P(Modes, BootMode, testing::Values("ring0", "ring3"),
			 [](const testing::TestParamInfo<const char *> &info) { return std::string(info.param); });

TEST(BootKernel, RunsAnElfBuiltByTheTest)
{
	auto path = writeTemp("ok.elf", ElfBuilder::withCode(0x200000, okExitSevenCode()).build());

	auto result = runSpindle({"run", "--kernel", path});

	EXPECT_EQ(result.status, 7) << result.err;
	EXPECT_NE(result.out.find("OK"), std::string::npos);
	unlink(path.c_str());
}

TEST(BootKernel, MalformedElfGetsOneErrorLineAndExitTwo)
{
	auto file = ElfBuilder::withCode(0x200000, okExitSevenCode()).build();
	file.resize(100); // truncated inside the program headers
	auto path = writeTemp("truncated.elf", file);

	auto result = runSpindle({"run", "--kernel", path});

	EXPECT_EQ(result.status, 2);
	EXPECT_NE(result.err.find("program header"), std::string::npos) << result.err;
	EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
	unlink(path.c_str());
}

TEST(Faults, TripleFaultIsReportedWithRegistersAndStopsTheVm)
{
	auto result = runSpindle({"run", "triple-fault", "-c", "2"});

	EXPECT_EQ(result.status, 1);
	EXPECT_NE(result.out.find("about to fault"), std::string::npos) << result.out;
	// KVM says shutdown where it runs the guest (VMX, SVM) and a failed emulation where it
	// emulates it (PVM at CPL 0): either way one line says the guest crashed and why.
	const size_t crashed = result.err.find("guest crashed: ");
	ASSERT_NE(crashed, std::string::npos) << result.err;
	const std::string line = result.err.substr(crashed, result.err.find('\n', crashed) - crashed);
	EXPECT_TRUE(line.find("triple fault (KVM_EXIT_SHUTDOWN)") != std::string::npos ||
		    line.find("KVM internal error") != std::string::npos)
		<< line;
	// Registers are printed, or (AMD) the reason they cannot be.
	EXPECT_TRUE(line.find("rip=") != std::string::npos || line.find("registers unavailable") != std::string::npos)
		<< line;
}

TEST(Faults, TimeoutStopsAGuestThatNeverExits)
{
	auto path = writeTemp("spin.elf", ElfBuilder::withCode(0x200000, spinForeverCode()).build());

	auto result = runSpindle({"run", "--kernel", path, "-c", "2", "--timeout", "1"}, 60);

	EXPECT_FALSE(result.killed);
	EXPECT_EQ(result.status, 124) << result.err;
	EXPECT_NE(result.err.find("timeout"), std::string::npos);
	unlink(path.c_str());
}

TEST(Faults, TimeoutHoldsWhenNobodyReadsStdout)
{
	auto path = writeTemp("print.elf", ElfBuilder::withCode(0x200000, printForeverCode()).build());

	// Two vCPUs: one blocked writing, the other waiting its turn to write when the kick comes.
	auto result = runCommand({spindleBinary(), "run", "--kernel", path, "-c", "2", "--timeout", "2"}, 30, Stdout::NeverRead);

	EXPECT_FALSE(result.killed);
	EXPECT_EQ(result.status, 124) << result.err;
	// The timeout, plus the console's half-second grace, plus start and teardown.
	EXPECT_LT(result.seconds, 4.0) << result.err;
	unlink(path.c_str());
}

TEST(Faults, CrashedRunStillWritesValidMetricsAndResultsWithTheReason)
{
	const std::string metrics = "/tmp/spindle-kvm-test-crash-metrics-" + std::to_string(getpid()) + ".json";
	const std::string results = "/tmp/spindle-kvm-test-crash-results-" + std::to_string(getpid()) + ".json";

	auto result = runSpindle({"run", "triple-fault", "--metrics", metrics, "--results", results});

	ASSERT_EQ(result.status, 1) << result.err;
	for (const std::string &path : {metrics, results}) {
		const std::string json = readFile(path);
		EXPECT_EQ(JsonChecker::problem(json), "") << path << ": " << json;
		EXPECT_NE(json.find("\"status\":1"), std::string::npos) << json;
		EXPECT_NE(json.find("guest crashed"), std::string::npos) << json;
		unlink(path.c_str());
	}
}

namespace {

// "Seccomp:" of every thread of a running process, by thread name.
std::vector<std::pair<std::string, std::string>> seccompOfThreads(pid_t pid)
{
	std::vector<std::pair<std::string, std::string>> threads;
	for (const auto &[tid, name] : threadsOf(pid)) {
		const std::string status = readFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
		const size_t at = status.find("Seccomp:");
		threads.emplace_back(name, at == std::string::npos ? "?" : status.substr(at + 8, status.find('\n', at) - at - 8));
	}
	return threads;
}

std::string trimmed(const std::string &text)
{
	const size_t start = text.find_first_not_of(" \t");
	return start == std::string::npos ? std::string() : text.substr(start);
}

// Starts spindle with args, lets it run for a second, and returns what each thread shows.
std::vector<std::pair<std::string, std::string>> seccompOfARunningSpindle(const std::vector<std::string> &args)
{
	pid_t child = fork();
	if (child == 0) {
		std::vector<char *> argv;
		const std::string bin = spindleBinary();
		argv.push_back(const_cast<char *>(bin.c_str()));
		for (const std::string &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execv(argv[0], argv.data());
		_exit(127);
	}
	usleep(1'000'000);
	auto threads = seccompOfThreads(child);
	kill(child, SIGTERM);
	int status = 0;
	waitpid(child, &status, 0);
	return threads;
}

} // namespace

TEST(Seccomp, EveryThreadOfARunningSpindleIsFiltered)
{
	auto threads = seccompOfARunningSpindle({"run", "--policy", "coboost", "--vm", "lockbench,cpus=2,args=\"duration=60s\""});

	ASSERT_GE(threads.size(), 5u) << "main, console, scheduler and two vCPU threads";
	for (const auto &[name, mode] : threads)
		EXPECT_EQ(trimmed(mode), "2") << name;
}

TEST(Seccomp, OffInstallsNoFilter)
{
	auto threads = seccompOfARunningSpindle({"run", "--seccomp", "off", "--vm", "lockbench,cpus=2,args=\"duration=60s\""});

	ASSERT_FALSE(threads.empty());
	for (const auto &[name, mode] : threads)
		EXPECT_EQ(trimmed(mode), "0") << name;
}

TEST(Seccomp, AForbiddenCallFromAVcpuThreadIsReportedAndStopsTheRun)
{
	const std::string metrics = "/tmp/spindle-kvm-test-seccomp-" + std::to_string(getpid()) + ".json";
	setenv("SPINDLE_SECCOMP_SELFTEST", "vcpu", 1);

	auto result = runSpindle({"run", "lockbench", "-c", "2", "--metrics", metrics, "--", "duration=60s"}, 60);

	unsetenv("SPINDLE_SECCOMP_SELFTEST");
	EXPECT_EQ(result.status, 1) << result.err;
	EXPECT_LT(result.seconds, 10.0) << "the run stops at once, not after its 60 s";
	EXPECT_NE(result.err.find("seccomp: the vCPU thread called getppid"), std::string::npos) << result.err;
	const std::string json = readFile(metrics);
	EXPECT_EQ(JsonChecker::problem(json), "") << json;
	EXPECT_NE(json.find("seccomp"), std::string::npos) << json;
	unlink(metrics.c_str());
}

TEST(Metrics, JsonHasEveryVcpuAndItsExits)
{
	const std::string path = "/tmp/spindle-kvm-test-metrics-" + std::to_string(getpid()) + ".json";

	auto result = runSpindle({"run", "hello", "-c", "2", "--metrics", path});

	ASSERT_EQ(result.status, 0) << result.err;
	const std::string json = readFile(path);
	EXPECT_NE(json.find("\"vcpu\":1"), std::string::npos) << json;
	EXPECT_NE(json.find("\"io\":"), std::string::npos);
	EXPECT_NE(json.find("\"stop_reason\":\"guest_exit\""), std::string::npos);
	unlink(path.c_str());
}

TEST(Stats, ReportsStartupTimeAndVmmMemory)
{
	auto result = runSpindle({"run", "hello", "--stats"});

	ASSERT_EQ(result.status, 0) << result.err;
	EXPECT_NE(result.err.find("stats: start-up"), std::string::npos) << result.err;
	EXPECT_NE(result.err.find("beyond guest RAM"), std::string::npos);
}

TEST(GuestSpeed, CpuRatioBenchmarkRunsAndPrintsTheRatio)
{
	const char *bench = std::getenv("GUEST_CPU_RATIO_BIN");
	if (!bench || access(bench, X_OK) != 0)
		GTEST_SKIP() << "bench/guest/guest-cpu-ratio is not in this host (GUEST_CPU_RATIO_BIN unset or missing)";

	auto result = runCommand({bench, "--runs", "1", "--duration", "0.2", "--mode", "auto"}, 120);

	EXPECT_EQ(result.status, 0) << result.err;
	EXPECT_NE(result.out.find("ratio (guest/host, medians): "), std::string::npos) << result.out;
}

TEST(Check, ReportsKvmUsable)
{
	auto result = runSpindle({"check"});

	EXPECT_EQ(result.status, 0);
	EXPECT_NE(result.out.find("ok       /dev/kvm"), std::string::npos) << result.out;
	EXPECT_NE(result.out.find("PAUSE exits observable"), std::string::npos) << result.out;
	EXPECT_NE(result.out.find("(measured"), std::string::npos) << "PAUSE exits are measured: " << result.out;
	EXPECT_NE(result.out.find("guest code in ring3"), std::string::npos) << result.out;
}

TEST(Check, JsonNamesTheBackendAndEveryMeasuredCapability)
{
	auto result = runSpindle({"check", "--json"});

	EXPECT_EQ(result.status, 0);
	EXPECT_EQ(JsonChecker::problem(result.out), "") << result.out;
	for (const char *key : {"\"backend\":", "\"pause_exits\":{", "\"guest_native_ring0\":{",
				"\"guest_native_ring3\":{", "\"sched_deadline\":{"})
		EXPECT_NE(result.out.find(key), std::string::npos) << key << " in " << result.out;
}

SPINDLE_KVM_TEST_MAIN()

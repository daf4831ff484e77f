// Guests that block (WAIT, KICK) on real KVM: parking that works, stops that reach a parked
// vCPU, and floods and bad records that stay bounded. The guests here are the bundled lockbench
// (pvhalt, sleepy phases) and hand-built ELFs that submit one record for ever.

#include <unistd.h>

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "guest-kernels/abi/spindle_abi.h"
#include "tests/kvm/policy_run.h"
#include "tests/support/elf_builder.h"
#include "tests/support/json_check.h"
#include "tests/support/kvm_main.h"

using namespace spindle::test;

namespace {

std::string tempPath(const std::string &name)
{
	return "/tmp/spindle-pv-" + std::to_string(getpid()) + "-" + name;
}

template<typename Record>
std::vector<uint8_t> bytesOf(const Record &record)
{
	std::vector<uint8_t> bytes(sizeof(Record));
	std::memcpy(bytes.data(), &record, sizeof(Record));
	return bytes;
}

// A kernel that submits `record` for ever from every vCPU; returns its path.
std::string floodingKernel(const std::string &name, const std::vector<uint8_t> &record)
{
	const std::string path = tempPath(name + ".elf");
	const auto elf = ElfBuilder::withCode(0x200000, submitForeverCode(record)).build();
	std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(elf.data()),
						    static_cast<std::streamsize>(elf.size()));
	return path;
}

uint64_t sumOfParking(const std::string &metrics, const std::string &key)
{
	return sumAfter(metrics, "\"" + key + "\":");
}

} // namespace

TEST(Parking, PvhaltWaitersParkAndAreKickedAwake)
{
	// Two 2-vCPU VMs on one CPU: a waiter spins its threshold, then parks until kicked.
	PolicyRun run = runVms("cfs", "0", {"lockbench,cpus=2,args=\"lock=pvhalt duration=1s\"",
					    "lockbench,cpus=2,args=\"lock=pvhalt duration=1s\""},
			       {"--spin-threshold", "64"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(sumOfParking(run.metrics, "waits"), 0u) << run.metrics;
	EXPECT_GT(sumOfParking(run.metrics, "wakes_by_kick"), 0u) << run.metrics;
	EXPECT_GT(sumOfParking(run.metrics, "parked_us"), 0u) << run.metrics;
}

TEST(Parking, AStopReachesVcpusParkedInTheirIdlePhase)
{
	// Each vCPU idles 50 ms for every 1 ms of work: nearly always parked when the timeout comes.
	const std::string metrics = tempPath("sleepy-metrics.json");
	auto result = runCommand({spindleBinary(), "run", "lockbench", "-c", "2", "--timeout", "1", "--metrics", metrics,
				  "--", "idle=50ms", "busy=1ms", "duration=60s"},
				 60);

	EXPECT_EQ(result.status, 124) << result.err;
	EXPECT_LT(result.seconds, 3.0) << "a parked vCPU must not hold the stop";
	const std::string json = readFile(metrics);
	EXPECT_GT(sumOfParking(json, "waits"), 0u) << json;
	unlink(metrics.c_str());
}

TEST(Parking, AKickFloodIsCountedAndDroppedNotQueued)
{
	spindle_pv_kick kick{};
	kick.header = {SPINDLE_PV_MAGIC, SPINDLE_PV_KICK, sizeof(kick)};
	kick.vcpu = 1; // nobody waits: the first kick pends, the rest coalesce
	const std::string kernel = floodingKernel("kicks", bytesOf(kick));

	PolicyRun run = runVms("cfs", "0-1", {"kernel=" + kernel + ",cpus=2"}, {"--timeout", "1"});

	EXPECT_EQ(run.command.status, 124) << run.command.err;
	EXPECT_GT(sumOfParking(run.metrics, "kicks"), 10u) << run.metrics;
	EXPECT_GT(sumOfParking(run.metrics, "kicks_dropped"), 0u) << run.metrics;
	EXPECT_EQ(sumAfter(run.metrics, "\"pv_malformed\":"), 0u) << run.metrics;
	unlink(kernel.c_str());
}

TEST(Parking, KicksToAVcpuOutOfRangeAndWaitsOnABadAddressAreMalformed)
{
	spindle_pv_kick kick{};
	kick.header = {SPINDLE_PV_MAGIC, SPINDLE_PV_KICK, sizeof(kick)};
	kick.vcpu = 7; // the VM has 2
	spindle_pv_wait wait{};
	wait.header = {SPINDLE_PV_MAGIC, SPINDLE_PV_WAIT, sizeof(wait)};
	wait.word_gpa = 0xd1000; // the PV doorbell, in the MMIO hole: no RAM there
	const std::string kickKernel = floodingKernel("kick-range", bytesOf(kick));
	const std::string waitKernel = floodingKernel("wait-address", bytesOf(wait));

	PolicyRun kicks = runVms("cfs", "0-1", {"kernel=" + kickKernel + ",cpus=2"}, {"--timeout", "1"});
	PolicyRun waits = runVms("cfs", "0-1", {"kernel=" + waitKernel + ",cpus=2"}, {"--timeout", "1"});

	for (const PolicyRun *run : {&kicks, &waits}) {
		// The timeout, or the malformed-record limit if the guest reached it first.
		const bool limit = run->command.err.find("malformed PV records (Spindle's limit per VM)") != std::string::npos;
		EXPECT_EQ(run->command.status, limit ? 1 : 124) << run->command.err;
		EXPECT_GT(sumAfter(run->metrics, "\"pv_malformed\":"), 0u) << run->metrics;
		EXPECT_EQ(sumOfParking(run->metrics, "parked_us"), 0u) << "nothing parks on a refused record";
	}
	unlink(kickKernel.c_str());
	unlink(waitKernel.c_str());
}

SPINDLE_KVM_TEST_MAIN()

// The sampling spin detector on real KVM: where PAUSE never exits (or with --detect sample), the
// scheduler samples running vCPUs' RIPs through perf and classifies them. Unenlightened ticket
// VMs overcommitted are seen spinning and answered; cpu-bound VMs are not; a VM that reports
// its spins itself is no longer sampled.

#include <gtest/gtest.h>

#include "tests/kvm/policy_run.h"
#include "tests/support/kvm_main.h"

using namespace spindle::test;

namespace {

const std::string kTicketVm = "lockbench,cpus=2,args=\"lock=ticket duration=1s\"";
const std::string kCpuVm = "lockbench,cpus=2,args=\"mode=cpu duration=1s\"";
const std::string kPvticketVm = "lockbench,cpus=2,args=\"lock=pvticket duration=1s\"";

} // namespace

TEST(Sampling, OvercommittedTicketVmsAreSeenSpinningAndCoboosted)
{
	// Four unenlightened vCPUs on one CPU: every preempted holder leaves a waiter spinning.
	PolicyRun run = runVms("coboost", "0", {kTicketVm, kTicketVm}, {"--detect", "sample"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "samples"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "spins_sampled"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
}

TEST(Sampling, CpuBoundVmsShowNearlyNoSpins)
{
	PolicyRun run = runVms("coboost", "0", {kCpuVm, kCpuVm}, {"--detect", "sample"});

	ASSERT_EQ(run.command.status, 0) << run.command.err;
	const uint64_t samples = totalOf(run.metrics, "samples");
	EXPECT_GT(samples, 100u) << run.metrics;
	EXPECT_LE(totalOf(run.metrics, "spins_sampled") * 100, samples) << "at most 1% of the samples: " << run.metrics;
}

TEST(Sampling, IsOnByDefaultOnlyWherePauseNeverExits)
{
	PolicyRun run = runVms("cfs", "0-1", {kTicketVm}, {});

	ASSERT_EQ(run.command.status, 0) << run.command.err;
	const bool pauseExits = hostCapability("pause_exits").present;
	if (pauseExits)
		EXPECT_EQ(totalOf(run.metrics, "samples"), 0u) << "PLE sees spins here: no sampling by default";
	else
		EXPECT_GT(totalOf(run.metrics, "samples"), 0u) << "no PAUSE exits here: sampling by default";
}

TEST(Sampling, AnExplicitDetectorListWithoutSampleTurnsItOff)
{
	PolicyRun run = runVms("cfs", "0-1", {kTicketVm}, {"--detect", "pv,hints"});

	ASSERT_EQ(run.command.status, 0) << run.command.err;
	EXPECT_EQ(totalOf(run.metrics, "samples"), 0u) << run.metrics;
}

TEST(Sampling, StopsForAVmThatReportsItsSpinsAndGoesOnForOneThatDoesNot)
{
	// vm0 (pvticket) reports its long spins, overcommitted on one CPU; vm1 (ticket) cannot.
	PolicyRun run = runVms("cfs", "0", {kPvticketVm, kTicketVm}, {"--detect", "pv,sample"});

	expectCompletedWithMutualExclusion(run);
	ASSERT_GT(totalOf(vmMetrics(run.metrics, "vm0"), "spins_pv"), 0u) << run.metrics;
	EXPECT_EQ(sumAfter(run.metrics, "\"samplers_stopped_by_pv_reports\":"), 2u) << "both vCPUs of vm0: " << run.metrics;
	EXPECT_GT(totalOf(vmMetrics(run.metrics, "vm1"), "samples"), 0u) << "vm1 is still sampled: " << run.metrics;
}

SPINDLE_KVM_TEST_MAIN()

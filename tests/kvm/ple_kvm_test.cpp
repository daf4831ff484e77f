// Hardware spin detection on real KVM: the PLE and pattern detectors and the policies driven by
// them, and the --ple off baseline. These need a host whose KVM intercepts PAUSE and reports it
// through kvm:kvm_exit (VMX/SVM hardware, or the emulated host); each test asks the host (a
// measured guest PAUSE loop, `spindle check`) and skips with the reason where PAUSE never exits.
// scripts/test runs this binary directly and inside the emulated host.

#include <gtest/gtest.h>

#include "tests/kvm/policy_run.h"
#include "tests/support/kvm_main.h"

using namespace spindle::test;

TEST(PleDetector, CfsCountsPauseExitSpinsAndStillNeverBoosts)
{
	SPINDLE_REQUIRE_CAPABILITY("pause_exits");

	PolicyRun run = runPolicy("cfs", {"--detect", "ple"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_ple"), 0u) << run.metrics;
	EXPECT_EQ(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
}

TEST(PleDetector, PleOffBaselineSeesNoPauseExits)
{
	PolicyRun run = runPolicy("cfs", {"--ple", "off"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_EQ(totalOf(run.metrics, "spins_ple"), 0u) << "no PAUSE exits with --ple off";
	EXPECT_EQ(totalOf(run.metrics, "spins_pattern"), 0u) << run.metrics;
}

TEST(PleDetector, CoboostSeesPleWhenPauseExitsAreObservable)
{
	SPINDLE_REQUIRE_CAPABILITY("pause_exits");

	PolicyRun run = runPolicy("coboost");

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_ple") + totalOf(run.metrics, "spins_pattern"), 0u) << run.metrics;
}

TEST(PleDetector, PatternDetectorAloneDrivesCoboost)
{
	SPINDLE_REQUIRE_CAPABILITY("pause_exits");

	PolicyRun run = runPolicy("coboost", {"--detect", "pattern"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_pattern"), 0u) << run.metrics;
	EXPECT_EQ(totalOf(run.metrics, "spins_pv"), 0u) << "the PV detector is off";
	EXPECT_GT(totalOf(run.metrics, "boosts"), 0u) << run.metrics;
}

TEST(PleDetector, YieldReactsToPauseExitsAlone)
{
	SPINDLE_REQUIRE_CAPABILITY("pause_exits");

	PolicyRun run = runPolicy("yield", {"--detect", "ple"});

	expectCompletedWithMutualExclusion(run);
	EXPECT_GT(totalOf(run.metrics, "spins_ple"), 0u) << run.metrics;
	EXPECT_GT(totalOf(run.metrics, "yields"), 0u) << run.metrics;
}

SPINDLE_KVM_TEST_MAIN()

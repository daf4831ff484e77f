#include "bench/harness/options.h"

#include <gtest/gtest.h>

using namespace spindle::bench;

namespace {

const std::vector<std::string> kPolicies = { "cfs", "yield", "coboost", "gang", "adaptive" };

spindle::Result<BenchOptions> parse(const std::vector<std::string> &args)
{
	return parseBenchOptions(args, kPolicies);
}

} // namespace

TEST(BenchOptions, DefaultsIncludeBothCfsBaselines)
{
	auto options = parse({});

	ASSERT_TRUE(options.ok()) << options.error().message();
	const auto &policies = options->matrix.policies;
	EXPECT_EQ(policies[0], (PolicyVariant{ "cfs", false }));
	EXPECT_EQ(policies[1], (PolicyVariant{ "cfs", true }));
	EXPECT_EQ(options->matrix.overcommit, (std::vector<unsigned>{ 1, 2, 4 }));
	EXPECT_EQ(options->matrix.repeats, 3u);
	EXPECT_TRUE(options->matrix.fairness);
}

TEST(BenchOptions, VcpusDefaultToPoolSize)
{
	auto options = parse({ "--pcpus", "0-2" });

	ASSERT_TRUE(options.ok());
	EXPECT_EQ(options->matrix.vcpusPerVm, 3u);
	EXPECT_EQ(options->matrix.poolCpus, 3u);
	auto two = parse({ "--pcpus", "0-2", "--vcpus", "2" });
	ASSERT_TRUE(two.ok());
	EXPECT_EQ(two->matrix.vcpusPerVm, 2u);
	EXPECT_EQ(two->matrix.poolCpus, 3u);
}

TEST(BenchOptions, ScenariosDefaultToHomogeneousInBothMatrices)
{
	EXPECT_EQ(parse({})->matrix.scenarios, (std::vector<std::string>{ "homogeneous" }));
	EXPECT_EQ(parse({ "--quick" })->matrix.scenarios, (std::vector<std::string>{ "homogeneous" }));
}

TEST(BenchOptions, ParsesScenarios)
{
	auto options = parse({ "--scenarios", "sleepy,mixed-sizes" });
	auto all = parse({ "--scenarios=all" });

	ASSERT_TRUE(options.ok()) << options.error().message();
	EXPECT_EQ(options->matrix.scenarios, (std::vector<std::string>{ "sleepy", "mixed-sizes" }));
	ASSERT_TRUE(all.ok());
	EXPECT_EQ(all->matrix.scenarios.size(), knownScenarios().size());
}

TEST(BenchOptions, RejectsBadScenariosNamingTheFlag)
{
	for (const char *bad : { "", "sleepy,sleepy", "gang", "homogeneous,", "all,pvhalt" }) {
		auto options = parse({ "--scenarios", bad });
		ASSERT_FALSE(options.ok()) << bad;
		EXPECT_NE(options.error().message().find("--scenarios"), std::string::npos) << options.error().message();
	}
	EXPECT_FALSE(parse({ "--scenarios", "sleepy", "--scenarios", "pvhalt" }).ok());
}

TEST(BenchOptions, QuickShrinksTheMatrix)
{
	auto options = parse({ "--quick" });

	ASSERT_TRUE(options.ok());
	EXPECT_LT(expandMatrix(options->matrix).size(), expandMatrix(parse({})->matrix).size());
	EXPECT_FALSE(options->matrix.fairness);
}

TEST(BenchOptions, ExplicitFlagsWinOverQuickInAnyOrder)
{
	auto before = parse({ "--repeats", "1", "--quick" });
	auto after = parse({ "--quick", "--repeats=1" });

	ASSERT_TRUE(before.ok());
	ASSERT_TRUE(after.ok());
	EXPECT_EQ(before->matrix.repeats, 1u);
	EXPECT_EQ(after->matrix.repeats, 1u);
}

TEST(BenchOptions, ParsesDurations)
{
	auto options = parse({ "--duration", "250ms", "--think", "0", "--cs", "1us,4us" });

	ASSERT_TRUE(options.ok()) << options.error().message();
	EXPECT_EQ(options->matrix.durationNs, 250'000'000u);
	EXPECT_EQ(options->matrix.thinkNs, 0u);
	EXPECT_EQ(options->matrix.csNs, (std::vector<uint64_t>{ 1000, 4000 }));
}

TEST(BenchOptions, RejectsUnknownFlag)
{
	auto options = parse({ "--policy", "cfs" });

	ASSERT_FALSE(options.ok());
	EXPECT_NE(options.error().message().find("--policy"), std::string::npos);
}

TEST(BenchOptions, RejectsPositionalArgument)
{
	EXPECT_FALSE(parse({ "ticket" }).ok());
}

TEST(BenchOptions, RejectsMissingValue)
{
	EXPECT_FALSE(parse({ "--locks" }).ok());
}

TEST(BenchOptions, RejectsRepeatedFlag)
{
	EXPECT_FALSE(parse({ "--locks", "mcs", "--locks", "tas" }).ok());
}

TEST(BenchOptions, RejectsBadValuesNamingTheFlag)
{
	auto options = parse({ "--repeats", "0" });

	ASSERT_FALSE(options.ok());
	EXPECT_NE(options.error().message().find("--repeats"), std::string::npos);
	EXPECT_FALSE(parse({ "--fairness", "yes" }).ok());
	EXPECT_FALSE(parse({ "--duration", "0" }).ok());
	EXPECT_FALSE(parse({ "--duration", "601s" }).ok());
	EXPECT_FALSE(parse({ "--pcpus", "3-1" }).ok());
	EXPECT_FALSE(parse({ "--vcpus", "0" }).ok());
	EXPECT_FALSE(parse({ "--out", "" }).ok());
}

TEST(BenchOptions, RejectsRunTimeoutShorterThanDuration)
{
	EXPECT_FALSE(parse({ "--duration", "2s", "--run-timeout", "1s" }).ok());
}

// The hang watchdog waits the run timeout plus a grace as std::chrono::nanoseconds: 10^10 s wrapped
// negative and declared the first run hung at once.
TEST(BenchOptions, RejectsRunTimeoutLongerThanAWeek)
{
	EXPECT_FALSE(parse({ "--run-timeout", "10000000000s" }).ok());
	EXPECT_FALSE(parse({ "--run-timeout", "604801s" }).ok());
	auto week = parse({ "--run-timeout", "604800s" });
	ASSERT_TRUE(week.ok()) << week.error().message();
	EXPECT_EQ(week->runTimeoutNs, 604'800'000'000'000u);
}

// The default --vcpus is the pool's size; a pool larger than a VM may be would make every run
// fail (found by fuzz-bench-options).
TEST(BenchOptions, RejectsAPoolLargerThanAVmUnlessVcpusIsGiven)
{
	auto options = parse({ "--pcpus", "0-256" });
	ASSERT_FALSE(options.ok());
	EXPECT_NE(options.error().message().find("--vcpus"), std::string::npos);

	EXPECT_TRUE(parse({ "--pcpus", "0-255" }).ok());
	auto given = parse({ "--pcpus", "0-256", "--vcpus", "4" });
	ASSERT_TRUE(given.ok()) << given.error().message();
	EXPECT_EQ(given->matrix.vcpusPerVm, 4u);
}

TEST(BenchOptions, UsageListsEveryFlagWithItsDefault)
{
	const std::string usage = benchUsage();

	for (const char *flag : { "--scenarios", "--policies", "--overcommit", "--locks", "--cs", "--think", "--duration", "--repeats",
				  "--fairness", "--quick", "--pcpus", "--vcpus", "--run-timeout", "--out", "--help" })
		EXPECT_NE(usage.find(flag), std::string::npos) << flag;
	EXPECT_NE(usage.find("default cfs-nople,cfs,"), std::string::npos);
	EXPECT_NE(usage.find("--scenarios LIST    scenarios above, or all (default homogeneous)"), std::string::npos) << usage;
}

TEST(BenchOptions, UsageDocumentsEveryScenario)
{
	const std::string usage = benchUsage();

	for (const ScenarioInfo &scenario : knownScenarios()) {
		EXPECT_NE(usage.find("\n  " + std::string(scenario.name) + " "), std::string::npos) << scenario.name;
		EXPECT_NE(usage.find(std::string(scenario.mix.substr(0, scenario.mix.find('\n')))), std::string::npos)
			<< scenario.name;
	}
	EXPECT_NE(usage.find("fair share"), std::string::npos);
}

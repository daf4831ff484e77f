#include "bench/harness/matrix.h"

#include <gtest/gtest.h>

using namespace spindle::bench;

namespace {

const std::vector<std::string> kPolicies = { "cfs", "yield", "coboost", "adaptive" };

MatrixSpec twoByTwo()
{
	MatrixSpec spec;
	spec.policies = { { "cfs", true }, { "coboost", true } };
	spec.overcommit = { 1, 2 };
	spec.locks = { "ticket" };
	spec.csNs = { 500 };
	spec.repeats = 2;
	spec.fairness = false;
	return spec;
}

} // namespace

TEST(PolicyList, NopleSuffixTurnsPauseExitsOff)
{
	auto list = parsePolicyList("cfs-nople,cfs", kPolicies);

	ASSERT_TRUE(list.ok()) << list.error().message();
	ASSERT_EQ(list->size(), 2u);
	EXPECT_EQ((*list)[0], (PolicyVariant{ "cfs", false }));
	EXPECT_EQ((*list)[1], (PolicyVariant{ "cfs", true }));
}

TEST(PolicyList, LabelRoundTrips)
{
	EXPECT_EQ((PolicyVariant{ "coboost", false }).label(), "coboost-nople");
	EXPECT_EQ((PolicyVariant{ "coboost", true }).label(), "coboost");
}

TEST(PolicyList, RejectsUnknownPolicyNamingIt)
{
	auto list = parsePolicyList("cfs,fifo", kPolicies);

	ASSERT_FALSE(list.ok());
	EXPECT_NE(list.error().message().find("'fifo'"), std::string::npos);
}

TEST(PolicyList, RejectsBareSuffix)
{
	EXPECT_FALSE(parsePolicyList("-nople", kPolicies).ok());
}

TEST(PolicyList, RejectsDuplicates)
{
	EXPECT_FALSE(parsePolicyList("cfs,yield,cfs", kPolicies).ok());
}

TEST(PolicyList, RejectsEmptyItems)
{
	EXPECT_FALSE(parsePolicyList("cfs,,yield", kPolicies).ok());
	EXPECT_FALSE(parsePolicyList("", kPolicies).ok());
}

TEST(OvercommitList, AcceptsPlainAndXSuffixed)
{
	auto list = parseOvercommitList("1,2x,4");

	ASSERT_TRUE(list.ok());
	EXPECT_EQ(*list, (std::vector<unsigned>{ 1, 2, 4 }));
}

TEST(OvercommitList, RejectsZeroTooLargeAndGarbage)
{
	EXPECT_FALSE(parseOvercommitList("0").ok());
	EXPECT_FALSE(parseOvercommitList("65").ok());
	EXPECT_FALSE(parseOvercommitList("2y").ok());
	EXPECT_FALSE(parseOvercommitList("-1").ok());
	EXPECT_FALSE(parseOvercommitList("2,2x").ok());
}

TEST(LockList, AcceptsEveryGuestLock)
{
	auto list = parseLockList("ticket,tas,ttas,mcs,qspin,pvticket");

	ASSERT_TRUE(list.ok());
	EXPECT_EQ(list->size(), 6u);
}

TEST(LockList, RejectsUnknownAndDuplicate)
{
	EXPECT_FALSE(parseLockList("ticket,spin").ok());
	EXPECT_FALSE(parseLockList("mcs,mcs").ok());
}

TEST(CsList, ParsesUnitsAndBareZero)
{
	auto list = parseCsList("0,500ns,2us,1.5ms");

	ASSERT_TRUE(list.ok()) << list.error().message();
	EXPECT_EQ(*list, (std::vector<uint64_t>{ 0, 500, 2000, 1'500'000 }));
}

TEST(CsList, RejectsMissingUnitOverLimitAndDuplicate)
{
	EXPECT_FALSE(parseCsList("500").ok());
	EXPECT_FALSE(parseCsList("11ms").ok());
	EXPECT_FALSE(parseCsList("1us,1000ns").ok());
}

TEST(ValidateMatrix, RejectsZeroRepeats)
{
	MatrixSpec spec = twoByTwo();
	spec.repeats = 0;

	EXPECT_FALSE(validateMatrix(spec).ok());
}

TEST(ValidateMatrix, RejectsEmptyAxis)
{
	MatrixSpec spec = twoByTwo();
	spec.locks.clear();

	EXPECT_FALSE(validateMatrix(spec).ok());
}

TEST(ExpandMatrix, CountsAloneAndCellRunsPerRepeat)
{
	const auto runs = expandMatrix(twoByTwo());

	// Per repeat: 1 alone + 2 factors x 2 policies.
	EXPECT_EQ(runs.size(), 2u * (1 + 4));
}

TEST(ExpandMatrix, FairnessAddsCoRunnerRunsAndOneCpuAlonePerRepeat)
{
	MatrixSpec spec = twoByTwo();
	spec.fairness = true;

	const auto runs = expandMatrix(spec);

	// Per repeat: 1 cpu-alone + 1 alone + 4 cells + 4 fairness runs.
	EXPECT_EQ(runs.size(), 2u * (1 + 1 + 4 + 4));
	EXPECT_EQ(runs.front().kind, RunKind::CpuAlone);
}

TEST(ExpandMatrix, AloneRunPrecedesItsCellsAndUsesStockCfs)
{
	const auto runs = expandMatrix(twoByTwo());

	EXPECT_EQ(runs[0].kind, RunKind::Alone);
	EXPECT_EQ(runs[0].policy, (PolicyVariant{ "cfs", true }));
	EXPECT_EQ(runs[0].overcommit, 1u);
	EXPECT_EQ(runs[1].kind, RunKind::Cell);
}

TEST(ExpandMatrix, NoplePolicyAddsANopleAloneBaseline)
{
	MatrixSpec spec = twoByTwo();
	spec.policies.push_back({ "cfs", false });

	const auto runs = expandMatrix(spec);

	// Per repeat: 2 alone + 2 factors x 3 policies.
	EXPECT_EQ(runs.size(), 2u * (2 + 6));
	EXPECT_EQ(runs[1].kind, RunKind::Alone);
	EXPECT_EQ(runs[1].policy, (PolicyVariant{ "cfs", false }));
}

TEST(ExpandMatrix, RepetitionsAreTheOuterLoop)
{
	const auto runs = expandMatrix(twoByTwo());

	for (size_t i = 0; i < 5; ++i)
		EXPECT_EQ(runs[i].repeat, 0u) << i;
	for (size_t i = 5; i < runs.size(); ++i)
		EXPECT_EQ(runs[i].repeat, 1u) << i;
}

TEST(ExpandMatrix, EveryCellAppearsOncePerRepeat)
{
	const auto runs = expandMatrix(twoByTwo());

	unsigned coboostAt2 = 0;
	for (const RunPlan &run : runs)
		coboostAt2 += run.kind == RunKind::Cell && run.policy.policy == "coboost" && run.overcommit == 2;
	EXPECT_EQ(coboostAt2, 2u);
}

TEST(FormatDuration, PicksTheLargestExactUnit)
{
	EXPECT_EQ(formatDuration(0), "0");
	EXPECT_EQ(formatDuration(500), "500ns");
	EXPECT_EQ(formatDuration(2000), "2us");
	EXPECT_EQ(formatDuration(1'500'000), "1500us");
	EXPECT_EQ(formatDuration(1'000'000'000), "1s");
}

#include "bench/harness/results.h"

#include <gtest/gtest.h>

using namespace spindle::bench;

namespace {

HostInfo testHost()
{
	return { "emulated", "QEMU Virtual CPU version 2.5+", "6.1.0 x86_64", 2, "v1-dirty", "2025-01-01T00:00:00Z",
		 "spindle bench --quick" };
}

RunRecord record(RunKind kind, const std::string &policy, unsigned k, std::vector<double> ops, unsigned repeat = 0)
{
	RunRecord r;
	r.plan = { kind, { policy, true }, k, "ticket", 500, repeat };
	r.lockOps = std::move(ops);
	return r;
}

size_t count(const std::string &text, char c)
{
	return static_cast<size_t>(std::count(text.begin(), text.end(), c));
}

} // namespace

TEST(Median, OddCountTakesTheMiddle)
{
	EXPECT_EQ(median({ 3, 1, 2 }), 2.0);
}

TEST(Median, EvenCountAveragesTheMiddleTwo)
{
	EXPECT_EQ(median({ 4, 1, 3, 2 }), 2.5);
}

TEST(Median, EmptyHasNone)
{
	EXPECT_FALSE(median({}).has_value());
}

TEST(Efficiency, PerfectSharingIsOne)
{
	// Two VMs each doing half of what one does alone.
	EXPECT_DOUBLE_EQ(*efficiency({ 50, 50 }, 100), 1.0);
}

TEST(Efficiency, IsTheMeanOfEachVmsRatio)
{
	// Shares are 100 / 4 = 25 each: ratios 0.4, 0.2, 0.2, 0.2.
	EXPECT_DOUBLE_EQ(*efficiency({ 10, 5, 5, 5 }, 100), 0.25);
}

TEST(Efficiency, NoneWithoutAloneThroughputOrVms)
{
	EXPECT_FALSE(efficiency({ 10 }, 0).has_value());
	EXPECT_FALSE(efficiency({}, 100).has_value());
}

TEST(Fairness, EntitledShareIsOne)
{
	// Three VMs in the pool: entitled to a third of its rate alone.
	EXPECT_DOUBLE_EQ(*fairness(30, 90, 3), 1.0);
	EXPECT_DOUBLE_EQ(*fairness(15, 90, 3), 0.5);
}

TEST(Fairness, NoneWithoutAloneRate)
{
	EXPECT_FALSE(fairness(30, 0, 3).has_value());
}

TEST(DeriveRatios, DividesByTheMedianAloneRun)
{
	std::vector<RunRecord> records = {
		record(RunKind::Alone, "cfs", 1, { 90 }), record(RunKind::Alone, "cfs", 1, { 100 }, 1),
		record(RunKind::Alone, "cfs", 1, { 200 }, 2), record(RunKind::Cell, "coboost", 2, { 25, 25 }),
	};

	deriveRatios(records);

	ASSERT_TRUE(records[3].efficiency.has_value());
	EXPECT_DOUBLE_EQ(*records[3].efficiency, 0.5);
}

TEST(DeriveRatios, DividesByTheAloneRunWithTheSamePleSetting)
{
	RunRecord aloneNople = record(RunKind::Alone, "cfs", 1, { 400 });
	aloneNople.plan.policy.pauseExits = false;
	RunRecord cellNople = record(RunKind::Cell, "cfs", 2, { 100, 100 });
	cellNople.plan.policy.pauseExits = false;
	std::vector<RunRecord> records = { record(RunKind::Alone, "cfs", 1, { 100 }), aloneNople, cellNople,
					   record(RunKind::Cell, "cfs", 2, { 50, 50 }) };

	deriveRatios(records);

	EXPECT_DOUBLE_EQ(*records[2].efficiency, 0.5);
	EXPECT_DOUBLE_EQ(*records[3].efficiency, 1.0);
}

TEST(DeriveRatios, IgnoresFailedAloneRuns)
{
	std::vector<RunRecord> records = { record(RunKind::Alone, "cfs", 1, { 1 }), record(RunKind::Alone, "cfs", 1, { 100 }),
					   record(RunKind::Cell, "cfs", 2, { 50, 50 }) };
	records[0].status = RunStatus::Failed;

	deriveRatios(records);

	EXPECT_DOUBLE_EQ(*records[2].efficiency, 1.0);
}

TEST(DeriveRatios, FairnessCountsTheCoRunnerAsOneMoreVm)
{
	RunRecord cpuAlone = record(RunKind::CpuAlone, "cfs", 0, {});
	cpuAlone.cpuOps = 300;
	RunRecord run = record(RunKind::Fairness, "cfs", 2, { 10, 10 });
	run.cpuOps = 100;
	std::vector<RunRecord> records = { cpuAlone, record(RunKind::Alone, "cfs", 1, { 30 }), run };

	deriveRatios(records);

	ASSERT_TRUE(records[2].fairness.has_value());
	EXPECT_DOUBLE_EQ(*records[2].fairness, 1.0);
}

TEST(DeriveRatios, NoEfficiencyWithoutAnAloneRun)
{
	std::vector<RunRecord> records = { record(RunKind::Cell, "cfs", 2, { 50, 50 }) };

	deriveRatios(records);

	EXPECT_FALSE(records[0].efficiency.has_value());
}

TEST(Summarize, TakesMediansPerCellAndCountsFailures)
{
	std::vector<RunRecord> records = {
		record(RunKind::Alone, "cfs", 1, { 100 }),
		record(RunKind::Cell, "cfs", 2, { 10, 10 }), record(RunKind::Cell, "cfs", 2, { 20, 20 }, 1),
		record(RunKind::Cell, "cfs", 2, { 40, 40 }, 2), record(RunKind::Cell, "cfs", 2, {}, 3),
	};
	records[4].status = RunStatus::Failed;
	deriveRatios(records);

	const auto cells = summarize(records);

	ASSERT_EQ(cells.size(), 2u);
	EXPECT_EQ(cells[0].policy, "alone cfs");
	const CellSummary &cfs = cells[1];
	EXPECT_EQ(cfs.runs, 4u);
	EXPECT_EQ(cfs.okRuns, 3u);
	EXPECT_DOUBLE_EQ(*cfs.efficiency, 0.4);
	EXPECT_DOUBLE_EQ(*cfs.efficiencyMin, 0.2);
	EXPECT_DOUBLE_EQ(*cfs.efficiencyMax, 0.8);
}

TEST(Summarize, FairnessRunsFoldIntoTheirCellWithoutTouchingEfficiency)
{
	RunRecord cpuAlone = record(RunKind::CpuAlone, "cfs", 0, {});
	cpuAlone.cpuOps = 300;
	RunRecord fair = record(RunKind::Fairness, "cfs", 2, { 1, 1 });
	fair.cpuOps = 50;
	std::vector<RunRecord> records = { cpuAlone, record(RunKind::Alone, "cfs", 1, { 100 }),
					   record(RunKind::Cell, "cfs", 2, { 50, 50 }), fair };
	deriveRatios(records);

	const auto cells = summarize(records);

	ASSERT_EQ(cells.size(), 2u);
	EXPECT_DOUBLE_EQ(*cells[1].efficiency, 1.0);
	EXPECT_DOUBLE_EQ(*cells[1].fairness, 0.5);
	EXPECT_EQ(cells[1].runs, 1u);
}

TEST(HostInfo, CpuModelIsTheFirstModelName)
{
	const std::string cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: QEMU Virtual CPU version 2.5+  \n"
				    "processor\t: 1\nmodel name\t: other\n";

	EXPECT_EQ(cpuModelFromCpuinfo(cpuinfo), "QEMU Virtual CPU version 2.5+");
	EXPECT_EQ(cpuModelFromCpuinfo("processor : 0\n"), "");
}

TEST(HostInfo, KindFromEnvironmentCmdlineOrModel)
{
	EXPECT_EQ(hostKind("1", "", "AMD EPYC"), "emulated");
	EXPECT_EQ(hostKind("", "console=ttyS0 SPINDLE_HOST_NONCE=ab12 quiet", "AMD EPYC"), "emulated");
	EXPECT_EQ(hostKind("", "quiet", "QEMU Virtual CPU version 2.5+"), "kvm-in-qemu");
	EXPECT_EQ(hostKind("0", "quiet", "Intel(R) Xeon(R) Gold 6230"), "kvm");
}

TEST(RunsCsv, OneHeaderAndOneRowPerRunWithEqualFieldCounts)
{
	std::vector<RunRecord> records = { record(RunKind::Alone, "cfs", 1, { 100 }), record(RunKind::Cell, "cfs", 2, { 50, 40 }) };
	records[1].index = 2;
	deriveRatios(records);

	const std::string csv = runsCsv(records, testHost());

	EXPECT_EQ(count(csv, '\n'), 3u);
	const std::string header = csv.substr(0, csv.find('\n'));
	const std::string row = csv.substr(csv.rfind('\n', csv.size() - 2) + 1);
	EXPECT_EQ(count(header, ','), count(row, ','));
	EXPECT_NE(row.find("50.0;40.0"), std::string::npos);
	EXPECT_NE(row.find("0.9000"), std::string::npos);
	EXPECT_NE(row.find("emulated"), std::string::npos);
}

TEST(RunsCsv, QuotesFieldsHoldingCommasAndQuotes)
{
	RunRecord failed = record(RunKind::Cell, "cfs", 2, {});
	failed.status = RunStatus::Failed;
	failed.failure = "lock0: guest said \"no\", twice";

	const std::string csv = runsCsv({ failed }, testHost());

	EXPECT_NE(csv.find(",failed,\"lock0: guest said \"\"no\"\", twice\","), std::string::npos);
}

TEST(RunsJson, CarriesHostRunsCellsAndNullForMissingNumbers)
{
	std::vector<RunRecord> records = { record(RunKind::Cell, "cfs", 2, { 50, 50 }) };
	const auto cells = summarize(records);

	const std::string json = runsJson(records, cells, testHost(), false);

	EXPECT_NE(json.find("\"host\": {\"kind\": \"emulated\""), std::string::npos);
	EXPECT_NE(json.find("\"complete\": false"), std::string::npos);
	EXPECT_NE(json.find("\"efficiency\": null"), std::string::npos);
	EXPECT_NE(json.find("\"vm_ops_per_s\": [50.0, 50.0]"), std::string::npos);
	EXPECT_EQ(count(json, '{'), count(json, '}'));
	EXPECT_EQ(count(json, '['), count(json, ']'));
}

TEST(RunsJson, EscapesQuotesAndControlCharacters)
{
	RunRecord failed = record(RunKind::Cell, "cfs", 2, {});
	failed.status = RunStatus::Failed;
	failed.failure = "bad \"x\"\n";

	const std::string json = runsJson({ failed }, {}, testHost(), true);

	EXPECT_NE(json.find(R"("failure": "bad \"x\"\n")"), std::string::npos);
}

TEST(SummaryMarkdown, EfficiencyTableHasPoliciesDownAndFactorsAcross)
{
	std::vector<RunRecord> records = { record(RunKind::Alone, "cfs", 1, { 100 }), record(RunKind::Cell, "cfs", 1, { 100 }),
					   record(RunKind::Cell, "cfs", 2, { 20, 20 }),
					   record(RunKind::Cell, "coboost", 2, { 45, 45 }) };
	deriveRatios(records);

	const std::string md = summaryMarkdown(summarize(records), testHost(), true);

	EXPECT_NE(md.find("## lock ticket, cs 500ns"), std::string::npos);
	EXPECT_NE(md.find("| policy | eff 1x | eff 2x | fair 1x | fair 2x |"), std::string::npos);
	EXPECT_NE(md.find("| cfs | 1.00 | 0.40 | – | – |"), std::string::npos);
	EXPECT_NE(md.find("| coboost | – | 0.90 | – | – |"), std::string::npos);
	EXPECT_NE(md.find("emulated"), std::string::npos);
	EXPECT_EQ(md.find("incomplete"), std::string::npos);
}

TEST(SummaryMarkdown, MarksAnInterruptedMatrix)
{
	const std::string md = summaryMarkdown({}, testHost(), false);

	EXPECT_NE(md.find("incomplete"), std::string::npos);
}

TEST(SummaryCsv, SortsRowsSoEachPolicyLineIsContiguousAndDropsAlone)
{
	std::vector<RunRecord> records = { record(RunKind::Alone, "cfs", 1, { 100 }),
					   record(RunKind::Cell, "cfs", 1, { 100 }), record(RunKind::Cell, "coboost", 1, { 90 }),
					   record(RunKind::Cell, "cfs", 2, { 30, 30 }), record(RunKind::Cell, "coboost", 2, { 40, 40 }) };
	deriveRatios(records);

	const std::string csv = summaryCsv(summarize(records));

	EXPECT_EQ(csv, "panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n"
		       "ticket@500ns,ticket,500,cfs,1,1.0000,1.0000,1.0000,NaN\n"
		       "ticket@500ns,ticket,500,cfs,2,0.6000,0.6000,0.6000,NaN\n"
		       "ticket@500ns,ticket,500,coboost,1,0.9000,0.9000,0.9000,NaN\n"
		       "ticket@500ns,ticket,500,coboost,2,0.8000,0.8000,0.8000,NaN\n");
}

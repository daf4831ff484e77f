// The host's steal per run: reading it from /proc/stat, and where it shows in the outputs.

#include "bench/harness/host_steal.h"

#include <gtest/gtest.h>

#include "bench/harness/results.h"
#include "bench/harness/scenarios.h"

using namespace spindle::bench;

namespace {

constexpr std::string_view kProcStat = "cpu  4705 150 1120 16250 520 0 40 876 0 0\n"
				       "cpu0 2350 75 560 8125 260 0 20 438 0 0\n"
				       "intr 114930548 113199788 3 0 5 263 0 4 [...]\n";

HostInfo host()
{
	return { "kvm", "PVM", "Intel(R) Xeon(R) Processor", "6.18.44 x86_64", 2, "v1", "2026-12-03T00:00:00Z",
		 "spindle bench" };
}

// A successful cell run of two 2-vCPU lock VMs under cfs, with the host's steal as given.
RunRecord cellRun(RunKind kind, std::optional<double> stealShare, unsigned repeat = 0)
{
	RunRecord r;
	std::vector<VmTemplate> vms = scenarioVms("homogeneous", 2, { "ticket", 500, 2'000, 1'000'000'000, 2 });
	r.plan = { kind, { "cfs", true }, 2, "ticket", 500, repeat, "homogeneous", vms, std::nullopt, 2 };
	if (kind == RunKind::Fairness)
		r.plan.coRunner = cpuVmTemplate(2, 1'000'000'000);
	r.vmOps = { 10, 10 };
	r.hostStealShare = stealShare;
	return r;
}

} // namespace

TEST(StealTicks, IsTheEighthNumberOfTheAggregateCpuLine)
{
	EXPECT_EQ(stealTicks(kProcStat), 876u);
}

TEST(StealTicks, NoneWithoutTheAggregateLineFirst)
{
	EXPECT_FALSE(stealTicks(""));
	EXPECT_FALSE(stealTicks("cpu0 2350 75 560 8125 260 0 20 438\n"));
	EXPECT_FALSE(stealTicks("intr 1 2 3\ncpu  4705 150 1120 16250 520 0 40 876\n"));
}

TEST(StealTicks, NoneWhenTheLineEndsBeforeTheStealField)
{
	EXPECT_FALSE(stealTicks("cpu  4705 150 1120 16250 520 0 40\ncpu0 1 2 3 4 5 6 7 8\n"));
}

TEST(StealTicks, NoneWhenAFieldIsNotAWholeNumber)
{
	EXPECT_FALSE(stealTicks("cpu  4705 150 1120 16250 520 0 40 87x6\n"));
	EXPECT_FALSE(stealTicks("cpu  4705 150 -1120 16250 520 0 40 876\n"));
	EXPECT_FALSE(stealTicks("cpu  4705 150 1120 16250 520 0 40 99999999999999999999999\n"));
}

TEST(StealShare, IsStolenTimeOverEveryCpusWallTime)
{
	// 200 ticks at 100 per second: 2 s stolen from 2 CPUs over 10 s.
	EXPECT_DOUBLE_EQ(*stealShare(100, 300, 100, 2, 10.0), 0.1);
}

TEST(StealShare, NoneWhenAReadingIsMissingOrTheCounterWentBack)
{
	EXPECT_FALSE(stealShare(std::nullopt, 300, 100, 2, 10.0));
	EXPECT_FALSE(stealShare(100, std::nullopt, 100, 2, 10.0));
	EXPECT_FALSE(stealShare(300, 100, 100, 2, 10.0));
}

TEST(StealShare, NoneWithoutTimeCpusOrTickRate)
{
	EXPECT_FALSE(stealShare(100, 300, 100, 2, 0.0));
	EXPECT_FALSE(stealShare(100, 300, 100, 0, 10.0));
	EXPECT_FALSE(stealShare(100, 300, 0, 2, 10.0));
}

TEST(Summarize, CountsTheRunsTheHostStoleFromCoRunnerRunsIncluded)
{
	std::vector<RunRecord> records = { cellRun(RunKind::Cell, 0.01), cellRun(RunKind::Cell, 0.20, 1),
					   cellRun(RunKind::Cell, std::nullopt, 2), cellRun(RunKind::Fairness, 0.08) };

	const std::vector<CellSummary> cells = summarize(records);

	ASSERT_EQ(cells.size(), 1u);
	EXPECT_EQ(cells[0].stolenRuns, 2u);
	EXPECT_DOUBLE_EQ(*cells[0].hostStealShare, 0.08);
}

TEST(RunsCsv, CarriesTheHostStealAsAPercentageAndEmptyWhenUnknown)
{
	RunRecord stolen = cellRun(RunKind::Cell, 0.1234);
	stolen.schedulerCpuMs = 12.5;

	const std::string csv = runsCsv({ stolen, cellRun(RunKind::Cell, std::nullopt) }, host());

	EXPECT_NE(csv.find(",scheduler_cpu_ms,host_steal_pct,host_kind,"), std::string::npos) << csv;
	EXPECT_NE(csv.find(",12.5,12.34,kvm,"), std::string::npos) << csv;
	EXPECT_NE(csv.find(",0.0,,kvm,"), std::string::npos) << csv;
}

TEST(SummaryMarkdown, SaysHowManyRunsTheHostStoleFrom)
{
	const std::vector<CellSummary> cells =
		summarize({ cellRun(RunKind::Cell, 0.20), cellRun(RunKind::Cell, 0.30, 1) });

	const std::string md = summaryMarkdown(cells, host(), true);

	EXPECT_NE(md.find("**Host steal:** in 2 runs the host took more than 5%"), std::string::npos) << md;
}

TEST(SummaryMarkdown, SaysNothingOfStealWhenNoRunWasStolenFrom)
{
	const std::vector<CellSummary> cells = summarize({ cellRun(RunKind::Cell, 0.01) });

	const std::string md = summaryMarkdown(cells, host(), true);

	EXPECT_EQ(md.find("Host steal"), std::string::npos) << md;
}

#include "bench/harness/results.h"

#include <gtest/gtest.h>

#include "tests/support/json_check.h"

using namespace spindle::bench;
using spindle::test::JsonChecker;

namespace {

HostInfo testHost()
{
	return { "emulated", "SVM", "QEMU Virtual CPU version 2.5+", "6.1.0 x86_64", 2, "v1-dirty", "2025-01-01T00:00:00Z",
		 "spindle bench --quick" };
}

const ScenarioParams kParams{ "ticket", 500, 2'000, 1'000'000'000, 2 };

VmTemplate lockVm(unsigned vcpus = 2)
{
	return scenarioVms("homogeneous", 1, { "ticket", 500, 2'000, 1'000'000'000, vcpus }).front();
}

// A run on a pool of 2 of the given VMs (the co-runner added to a Fairness run).
RunRecord run(RunKind kind, const std::string &scenario, std::vector<VmTemplate> vms, std::vector<double> ops,
	      unsigned k = 1, const std::string &policy = "cfs", unsigned repeat = 0)
{
	RunRecord r;
	r.plan = { kind, { policy, true }, k, "ticket", 500, repeat, scenario, std::move(vms), std::nullopt, 2 };
	if (kind == RunKind::Fairness)
		r.plan.coRunner = cpuVmTemplate(2, 1'000'000'000);
	r.vmOps = std::move(ops);
	return r;
}

// A run of the homogeneous scenario: k 2-vCPU lock VMs (one for Alone; a CpuAlone run has one
// cpu VM). ops may be empty, as a failed run's are.
RunRecord record(RunKind kind, const std::string &policy, unsigned k, std::vector<double> ops, unsigned repeat = 0)
{
	std::vector<VmTemplate> vms(kind == RunKind::Alone ? 1 : k, lockVm());
	if (kind == RunKind::CpuAlone)
		vms = { cpuVmTemplate(2, 1'000'000'000) };
	return run(kind, "homogeneous", std::move(vms), std::move(ops), k, policy, repeat);
}

RunRecord cpuAlone(double ops)
{
	return record(RunKind::CpuAlone, "cfs", 0, { ops });
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

TEST(EntitledShares, EqualBusyVmsGetOneKthEach)
{
	const auto shares = entitledShares({ lockVm(), lockVm(), lockVm(), lockVm() }, 2);

	ASSERT_EQ(shares.size(), 4u);
	for (double share : shares)
		EXPECT_DOUBLE_EQ(share, 0.25);
}

TEST(EntitledShares, AVmAloneOrUndercommittedGetsAll)
{
	EXPECT_DOUBLE_EQ(entitledShares({ lockVm() }, 2).front(), 1.0);
	// Two 1-vCPU VMs on two CPUs never share a CPU.
	for (double share : entitledShares({ lockVm(1), lockVm(1) }, 2))
		EXPECT_DOUBLE_EQ(share, 1.0);
}

TEST(EntitledShares, UnequalSizesAreWeightedByVcpus)
{
	// 2 + 1 + 1 vCPUs on 2 CPUs: every vCPU half a CPU. The 2-vCPU VM gets 1 CPU of the 2 it
	// had alone, a 1-vCPU VM half of the 1 it had: half of what each did alone.
	const auto shares = entitledShares({ lockVm(2), lockVm(1), lockVm(1) }, 2);

	ASSERT_EQ(shares.size(), 3u);
	EXPECT_DOUBLE_EQ(shares[0], 0.5);
	EXPECT_DOUBLE_EQ(shares[1], 0.5);
	EXPECT_DOUBLE_EQ(shares[2], 0.5);
	// 4 + 1 vCPUs on 2 CPUs: 2/5 of a CPU per vCPU; the 4-vCPU VM had only 2 CPUs alone.
	const auto big = entitledShares({ lockVm(4), lockVm(1) }, 2);
	EXPECT_DOUBLE_EQ(big[0], 4 * 0.4 / 2);
	EXPECT_DOUBLE_EQ(big[1], 0.4);
}

TEST(EntitledShares, SleepyVcpusLeaveWhatTheyDoNotWantToTheOthers)
{
	const VmTemplate sleepy = scenarioVms("sleepy", 1, kParams).front();
	ASSERT_DOUBLE_EQ(sleepy.duty, 0.5);

	// Two sleepy VMs of 2 on 2 CPUs want 4 x 1/2 = 2 CPUs: each gets all it wants.
	for (double share : entitledShares({ sleepy, sleepy }, 2))
		EXPECT_DOUBLE_EQ(share, 1.0);
	// Four want 4 CPUs of 2: each gets half of what it would alone.
	for (double share : entitledShares({ sleepy, sleepy, sleepy, sleepy }, 2))
		EXPECT_DOUBLE_EQ(share, 0.5);
	// A sleepy VM and a busy co-runner: the sleepy vCPUs get the half CPU each they want, the
	// co-runner's two vCPUs share the CPU left.
	const auto mixed = entitledShares({ sleepy, cpuVmTemplate(2, 1'000'000'000) }, 2);
	EXPECT_DOUBLE_EQ(mixed[0], 1.0);
	EXPECT_DOUBLE_EQ(mixed[1], 0.5);
	// With two busy co-runners the level (2 CPUs / 6 vCPUs) is below what a sleepy vCPU
	// wants: every vCPU gets a third of a CPU.
	const auto crowded = entitledShares({ sleepy, cpuVmTemplate(2, 1), cpuVmTemplate(2, 1) }, 2);
	EXPECT_DOUBLE_EQ(crowded[0], (1.0 / 3) / 0.5);
	EXPECT_DOUBLE_EQ(crowded[1], 1.0 / 3);
}

TEST(ShareRatio, IsThroughputOverTheEntitledPartOfAlone)
{
	EXPECT_DOUBLE_EQ(*shareRatio(50, 100, 0.5), 1.0);
	EXPECT_DOUBLE_EQ(*shareRatio(10, 100, 0.25), 0.4);
	EXPECT_FALSE(shareRatio(10, 0, 0.5).has_value());
	EXPECT_FALSE(shareRatio(10, 100, 0).has_value());
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
	RunRecord run = record(RunKind::Fairness, "cfs", 2, { 10, 10 });
	run.cpuOps = 100;
	std::vector<RunRecord> records = { cpuAlone(300), record(RunKind::Alone, "cfs", 1, { 30 }), run };

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

TEST(DeriveRatios, PerVmEfficiencyOfUnequalSizesUsesEachVmsOwnAloneRun)
{
	// 2 + 1 + 1 vCPUs on 2 CPUs: each VM is entitled to half of what it does alone.
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "mixed-sizes", { lockVm(2) }, { 100 }),
		run(RunKind::Alone, "mixed-sizes", { lockVm(1) }, { 60 }),
		run(RunKind::Cell, "mixed-sizes", { lockVm(2), lockVm(1), lockVm(1) }, { 50, 30, 15 }, 2),
	};

	deriveRatios(records);

	const RunRecord &cell = records[2];
	ASSERT_EQ(cell.vmEfficiency.size(), 3u);
	EXPECT_DOUBLE_EQ(*cell.vmEfficiency[0], 1.0);
	EXPECT_DOUBLE_EQ(*cell.vmEfficiency[1], 1.0);
	EXPECT_DOUBLE_EQ(*cell.vmEfficiency[2], 0.5);
	EXPECT_DOUBLE_EQ(*cell.efficiency, 2.5 / 3);
}

TEST(DeriveRatios, NoMeanWhenAVmHasNoAloneRun)
{
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "mixed-sizes", { lockVm(2) }, { 100 }),
		run(RunKind::Cell, "mixed-sizes", { lockVm(2), lockVm(1), lockVm(1) }, { 50, 30, 15 }, 2),
	};

	deriveRatios(records);

	ASSERT_EQ(records[1].vmEfficiency.size(), 3u);
	EXPECT_DOUBLE_EQ(*records[1].vmEfficiency[0], 1.0);
	EXPECT_FALSE(records[1].vmEfficiency[1].has_value());
	EXPECT_FALSE(records[1].efficiency.has_value());
}

TEST(DeriveRatios, AloneRunsServeOnlyTheirOwnScenario)
{
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "homogeneous", { lockVm() }, { 100 }),
		run(RunKind::Alone, "mixed-sizes", { lockVm() }, { 200 }),
		run(RunKind::Cell, "homogeneous", { lockVm(), lockVm() }, { 50, 50 }, 2),
	};

	deriveRatios(records);

	EXPECT_DOUBLE_EQ(*records[2].efficiency, 1.0);
}

TEST(DeriveRatios, EveryVmOfAMixAgainstItsTemplateAndTheCpuVmAgainstPleOn)
{
	const std::vector<VmTemplate> trio = scenarioVms("lock+barrier+cpu", 1, kParams);
	ASSERT_EQ(trio.size(), 3u);
	RunRecord lockAlone = run(RunKind::Alone, "lock+barrier+cpu", { trio[0] }, { 90 });
	RunRecord barrierAlone = run(RunKind::Alone, "lock+barrier+cpu", { trio[1] }, { 30 });
	RunRecord cpu = run(RunKind::CpuAlone, "lock+barrier+cpu", { trio[2] }, { 600 });
	RunRecord cell = run(RunKind::Cell, "lock+barrier+cpu", trio, { 30, 5, 200 }, 1, "cfs");
	for (RunRecord *r : { &lockAlone, &barrierAlone, &cell })
		r->plan.policy.pauseExits = false;
	std::vector<RunRecord> records = { lockAlone, barrierAlone, cpu, cell };

	deriveRatios(records);

	// 6 vCPUs on 2 CPUs: a third of its alone throughput for each.
	ASSERT_EQ(records[3].vmEfficiency.size(), 3u);
	EXPECT_DOUBLE_EQ(*records[3].vmEfficiency[0], 1.0);
	EXPECT_DOUBLE_EQ(*records[3].vmEfficiency[1], 0.5);
	EXPECT_DOUBLE_EQ(*records[3].vmEfficiency[2], 1.0);
	EXPECT_DOUBLE_EQ(*records[3].efficiency, 2.5 / 3);
}

TEST(DeriveRatios, FairnessOfACoRunnerBesideSleepyVmsGetsWhatTheyLeave)
{
	const VmTemplate sleepy = scenarioVms("sleepy", 1, kParams).front();
	RunRecord fair = run(RunKind::Fairness, "sleepy", { sleepy }, { 100 });
	fair.cpuOps = 150;
	std::vector<RunRecord> records = { run(RunKind::CpuAlone, "sleepy", { cpuVmTemplate(2, 1'000'000'000) }, { 300 }),
					   run(RunKind::Alone, "sleepy", { sleepy }, { 100 }), fair };

	deriveRatios(records);

	// The sleepy VM wants 1 CPU and keeps it; the co-runner is entitled to the other.
	EXPECT_DOUBLE_EQ(*records[2].efficiency, 1.0);
	EXPECT_DOUBLE_EQ(*records[2].fairness, 1.0);
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
	RunRecord fair = record(RunKind::Fairness, "cfs", 2, { 1, 1 });
	fair.cpuOps = 50;
	std::vector<RunRecord> records = { cpuAlone(300), record(RunKind::Alone, "cfs", 1, { 100 }),
					   record(RunKind::Cell, "cfs", 2, { 50, 50 }), fair };
	deriveRatios(records);

	const auto cells = summarize(records);

	// The co-runner's alone run, the lock VM's, and the cell.
	ASSERT_EQ(cells.size(), 3u);
	EXPECT_EQ(cells[0].policy, "alone cfs");
	EXPECT_EQ(cells[0].vms, (std::vector<std::string>{ "cpu/2" }));
	EXPECT_DOUBLE_EQ(*cells[2].efficiency, 1.0);
	EXPECT_DOUBLE_EQ(*cells[2].fairness, 0.5);
	EXPECT_EQ(cells[2].runs, 1u);
}

TEST(Summarize, KeepsScenariosApartWithPerVmMedians)
{
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "mixed-sizes", { lockVm(2) }, { 100 }),
		run(RunKind::Alone, "mixed-sizes", { lockVm(1) }, { 60 }),
		run(RunKind::Cell, "mixed-sizes", { lockVm(2), lockVm(1), lockVm(1) }, { 50, 30, 15 }, 2),
		run(RunKind::Cell, "mixed-sizes", { lockVm(2), lockVm(1), lockVm(1) }, { 40, 30, 30 }, 2, "cfs", 1),
		run(RunKind::Alone, "homogeneous", { lockVm(2) }, { 100 }),
		run(RunKind::Cell, "homogeneous", { lockVm(2), lockVm(2) }, { 50, 50 }, 2),
	};
	deriveRatios(records);

	const auto cells = summarize(records);

	// Two alone rows (one per template) and a cell for mixed-sizes; an alone row and a cell for
	// homogeneous.
	ASSERT_EQ(cells.size(), 5u);
	EXPECT_EQ(cells[1].vms, (std::vector<std::string>{ "lock/1" }));
	const CellSummary &mixed = cells[2];
	EXPECT_EQ(mixed.scenario, "mixed-sizes");
	EXPECT_EQ(mixed.vms, (std::vector<std::string>{ "lock/2", "lock/1", "lock/1" }));
	ASSERT_EQ(mixed.vmEfficiency.size(), 3u);
	EXPECT_DOUBLE_EQ(*mixed.vmEfficiency[0], 0.9);
	EXPECT_DOUBLE_EQ(*mixed.vmEfficiency[1], 1.0);
	EXPECT_DOUBLE_EQ(*mixed.vmEfficiency[2], 0.75);
	EXPECT_EQ(cells[4].scenario, "homogeneous");
	EXPECT_DOUBLE_EQ(*cells[4].efficiency, 1.0);
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
	EXPECT_TRUE(header.starts_with("run,scenario,kind,")) << header;
	EXPECT_TRUE(row.starts_with("2,homogeneous,cell,")) << row;
	EXPECT_NE(row.find(",lock/2;lock/2,50.0;40.0,1.0000;0.8000,"), std::string::npos) << row;
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

TEST(RunsCsv, BoostClassSaysWhatTheKernelGranted)
{
	RunRecord fifo = record(RunKind::Cell, "coboost", 2, { 50, 40 });
	RunRecord deadline = fifo, refused = fifo;
	deadline.plan.policy.deadlineBoosts = refused.plan.policy.deadlineBoosts = true;
	refused.boostFellBackToFifo = true;

	const std::string csv = runsCsv({ fifo, deadline, refused }, testHost());

	EXPECT_NE(csv.find(",coboost,on,fifo,2,"), std::string::npos) << csv;
	EXPECT_NE(csv.find(",coboost,on,deadline,2,"), std::string::npos) << csv;
	EXPECT_NE(csv.find(",coboost,on,deadline-fell-back-to-fifo,2,"), std::string::npos) << csv;
}

TEST(RunsJson, CarriesHostRunsCellsAndNullForMissingNumbers)
{
	std::vector<RunRecord> records = { record(RunKind::Cell, "cfs", 2, { 50, 50 }) };
	const auto cells = summarize(records);

	const std::string json = runsJson(records, cells, testHost(), false);

	EXPECT_NE(json.find("\"host\": {\"kind\": \"emulated\", \"backend\": \"SVM\""), std::string::npos);
	EXPECT_NE(json.find("\"complete\": false"), std::string::npos);
	EXPECT_NE(json.find("\"efficiency\": null"), std::string::npos);
	EXPECT_NE(json.find("\"vm_ops_per_s\": [50.0, 50.0]"), std::string::npos);
	EXPECT_NE(json.find("\"vm_efficiency\": [null, null]"), std::string::npos);
	EXPECT_EQ(JsonChecker::problem(json), "");
}

TEST(RunsJson, IsValidWithScenariosMixesCoRunnersAndFailures)
{
	const std::vector<VmTemplate> trio = scenarioVms("lock+barrier+cpu", 1, kParams);
	RunRecord fair = run(RunKind::Fairness, "lock+barrier+cpu", trio, { 30, 5, 200 });
	fair.cpuOps = 100;
	RunRecord failed = run(RunKind::Cell, "sleepy", scenarioVms("sleepy", 1, kParams), {});
	failed.status = RunStatus::Failed;
	failed.failure = "lock0: \"timeout\"\t";
	std::vector<RunRecord> records = { run(RunKind::Alone, "lock+barrier+cpu", { trio[0] }, { 90 }),
					   run(RunKind::CpuAlone, "lock+barrier+cpu", { trio[2] }, { 600 }), fair, failed };
	deriveRatios(records);

	const std::string json = runsJson(records, summarize(records), testHost(), true);

	EXPECT_EQ(JsonChecker::problem(json), "") << json;
	EXPECT_NE(json.find("\"scenario\": \"lock+barrier+cpu\""), std::string::npos);
	EXPECT_NE(json.find("{\"role\": \"barrier\", \"vcpus\": 2, \"args\": \"mode=barrier think=2us duration=1s\"}"),
		  std::string::npos);
	EXPECT_NE(json.find("\"co_runner\": {\"role\": \"cpu\""), std::string::npos);
	// 8 vCPUs on 2 CPUs: a quarter each. The barrier VM has no alone run: its efficiency is
	// null, and so is the mean.
	EXPECT_NE(json.find("\"vm_efficiency\": [1.3333, null, 1.3333], \"cpu_ops_per_s\": 100.0, \"efficiency\": null, "
			    "\"fairness\": 0.6667"),
		  std::string::npos)
		<< json;
	EXPECT_NE(json.find("\"vms\": [\"lock/2\", \"barrier/2\", \"cpu/2\"]"), std::string::npos);
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

	EXPECT_NE(md.find("## Scenario homogeneous\n"), std::string::npos) << md;
	EXPECT_NE(md.find("### lock ticket, cs 500ns"), std::string::npos);
	EXPECT_NE(md.find("Alone: lock/2 100 ops/s under cfs (median of 1)."), std::string::npos) << md;
	EXPECT_NE(md.find("VMs: 1x lock/2; 2x 2 x lock/2."), std::string::npos) << md;
	EXPECT_NE(md.find("| policy | eff 1x | eff 2x | fair 1x | fair 2x |"), std::string::npos);
	EXPECT_NE(md.find("| cfs | 1.00 | 0.40 | – | – |"), std::string::npos);
	EXPECT_NE(md.find("| coboost | – | 0.90 | – | – |"), std::string::npos);
	EXPECT_NE(md.find("emulated"), std::string::npos);
	EXPECT_EQ(md.find("incomplete"), std::string::npos);
}

TEST(SummaryMarkdown, OneSectionPerScenarioInMatrixOrderWithPerVmEfficiency)
{
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "sleepy", scenarioVms("sleepy", 1, kParams), { 100 }),
		run(RunKind::Cell, "sleepy", scenarioVms("sleepy", 2, kParams), { 100, 50 }, 2),
		run(RunKind::Alone, "mixed-sizes", { lockVm(2) }, { 100 }),
		run(RunKind::Alone, "mixed-sizes", { lockVm(1) }, { 60 }),
		run(RunKind::Cell, "mixed-sizes", { lockVm(2), lockVm(1), lockVm(1) }, { 50, 30, 15 }, 2),
	};
	deriveRatios(records);

	const std::string md = summaryMarkdown(summarize(records), testHost(), true);

	const size_t sleepy = md.find("## Scenario sleepy\n");
	const size_t mixed = md.find("## Scenario mixed-sizes\n");
	ASSERT_NE(sleepy, std::string::npos) << md;
	ASSERT_NE(mixed, std::string::npos) << md;
	EXPECT_LT(sleepy, mixed);
	EXPECT_NE(md.find("VMs: 2x lock/2 + 2 x lock/1."), std::string::npos) << md;
	EXPECT_NE(md.find("| mixed-sizes | ticket | 500ns | 2 | cfs | lock/2 + 2 x lock/1 | 1/1 | 32 | 0.833 (0.83–0.83) | "
			  "1.00 1.00 0.50 |"),
		  std::string::npos)
		<< md;
	EXPECT_NE(md.find("| sleepy | ticket | 500ns | 2 | cfs | 2 x lock/2 | 1/1 | 75 | 0.750 (0.75–0.75) | 1.00 0.50 |"),
		  std::string::npos)
		<< md;
}

// A reader must see which KVM a table came from: ring-0 guests are emulated on PVM.
TEST(SummaryMarkdown, NamesTheKvmBackendInTheHostLine)
{
	const std::string md = summaryMarkdown({}, testHost(), true);

	EXPECT_NE(md.find("host: emulated (SVM), QEMU"), std::string::npos) << md.substr(0, 300);
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

	EXPECT_EQ(csv, "scenario,panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,cfs,1,1.0000,1.0000,1.0000,NaN\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,cfs,2,0.6000,0.6000,0.6000,NaN\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,coboost,1,0.9000,0.9000,0.9000,NaN\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,coboost,2,0.8000,0.8000,0.8000,NaN\n");
}

TEST(SummaryCsv, OnePanelPerScenarioInMatrixOrder)
{
	// "sleepy" sorts after "homogeneous" by name; the panels keep the matrix's order instead.
	std::vector<RunRecord> records = {
		run(RunKind::Alone, "sleepy", scenarioVms("sleepy", 1, kParams), { 100 }),
		run(RunKind::Cell, "sleepy", scenarioVms("sleepy", 2, kParams), { 100, 100 }, 2),
		record(RunKind::Alone, "cfs", 1, { 100 }),
		record(RunKind::Cell, "cfs", 2, { 50, 50 }),
	};
	deriveRatios(records);

	const std::string csv = summaryCsv(summarize(records));

	EXPECT_EQ(csv, "scenario,panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n"
		       "sleepy,sleepy/ticket@500ns,ticket,500,cfs,2,1.0000,1.0000,1.0000,NaN\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,cfs,2,1.0000,1.0000,1.0000,NaN\n");
}

TEST(SummaryCsv, LocksAndPoliciesKeepTheMatrixOrder)
{
	std::vector<RunRecord> records = { record(RunKind::Cell, "gang", 2, { 50, 50 }), record(RunKind::Cell, "cfs", 2, { 50, 50 }),
					   record(RunKind::Cell, "gang", 2, { 50, 50 }), record(RunKind::Cell, "cfs", 2, { 50, 50 }) };
	records[2].plan.lock = "mcs";
	records[3].plan.lock = "mcs";

	const std::string csv = summaryCsv(summarize(records));

	EXPECT_EQ(csv, "scenario,panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,gang,2,NaN,NaN,NaN,NaN\n"
		       "homogeneous,homogeneous/ticket@500ns,ticket,500,cfs,2,NaN,NaN,NaN,NaN\n"
		       "homogeneous,homogeneous/mcs@500ns,mcs,500,gang,2,NaN,NaN,NaN,NaN\n"
		       "homogeneous,homogeneous/mcs@500ns,mcs,500,cfs,2,NaN,NaN,NaN,NaN\n");
}

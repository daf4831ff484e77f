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

const ScenarioParams kParams{ "ticket", 500, 2'000, 1'000'000'000, 2 };

std::vector<unsigned> sizes(const std::vector<VmTemplate> &vms)
{
	std::vector<unsigned> out;
	for (const VmTemplate &vm : vms)
		out.push_back(vm.vcpus);
	return out;
}

std::vector<std::string> labels(const std::vector<RunPlan> &runs)
{
	std::vector<std::string> out;
	for (const RunPlan &run : runs) {
		std::string text = run.scenario + " " + std::string(runKindName(run.kind)) + " " + run.policy.label();
		for (const VmTemplate &vm : run.vms)
			text += " " + vm.label();
		if (run.kind == RunKind::Cell || run.kind == RunKind::Fairness)
			text += " " + std::to_string(run.overcommit) + "x";
		out.push_back(text + (run.lock.empty() ? "" : " " + run.lock));
	}
	return out;
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

TEST(PolicyList, DlSuffixAsksForDeadlineBoostsAndCombinesWithNople)
{
	auto list = parsePolicyList("coboost-dl,coboost,coboost-dl-nople", kPolicies);

	ASSERT_TRUE(list.ok()) << list.error().message();
	ASSERT_EQ(list->size(), 3u);
	EXPECT_EQ((*list)[0], (PolicyVariant{ "coboost", true, true }));
	EXPECT_EQ((*list)[1], (PolicyVariant{ "coboost", true, false }));
	EXPECT_EQ((*list)[2], (PolicyVariant{ "coboost", false, true }));
}

TEST(PolicyList, RejectsSuffixesInTheWrongOrderOrTwice)
{
	EXPECT_FALSE(parsePolicyList("coboost-nople-dl", kPolicies).ok());
	EXPECT_FALSE(parsePolicyList("coboost-dl-dl", kPolicies).ok());
	EXPECT_FALSE(parsePolicyList("-dl", kPolicies).ok());
}

TEST(PolicyList, LabelRoundTrips)
{
	EXPECT_EQ((PolicyVariant{ "coboost", false }).label(), "coboost-nople");
	EXPECT_EQ((PolicyVariant{ "coboost", true }).label(), "coboost");
	EXPECT_EQ((PolicyVariant{ "coboost", true, true }).label(), "coboost-dl");
	EXPECT_EQ((PolicyVariant{ "coboost", false, true }).label(), "coboost-dl-nople");
	auto parsed = parsePolicyList("coboost-dl-nople", kPolicies);
	ASSERT_TRUE(parsed.ok());
	EXPECT_EQ((*parsed)[0].label(), "coboost-dl-nople");
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

TEST(ScenarioList, AllIsEveryScenarioInOrder)
{
	auto list = parseScenarioList("all");

	ASSERT_TRUE(list.ok());
	EXPECT_EQ(*list, (std::vector<std::string>{ "homogeneous", "sleepy", "mixed-sizes", "lock+barrier+cpu", "pvhalt" }));
}

TEST(ScenarioList, KeepsTheGivenOrder)
{
	auto list = parseScenarioList("pvhalt,homogeneous");

	ASSERT_TRUE(list.ok()) << list.error().message();
	EXPECT_EQ(*list, (std::vector<std::string>{ "pvhalt", "homogeneous" }));
}

TEST(ScenarioList, RejectsUnknownNamingIt)
{
	auto list = parseScenarioList("homogeneous,sleeepy");

	ASSERT_FALSE(list.ok());
	EXPECT_NE(list.error().message().find("'sleeepy'"), std::string::npos);
	EXPECT_NE(list.error().message().find("mixed-sizes"), std::string::npos) << list.error().message();
}

TEST(ScenarioList, RejectsDuplicatesEmptyAndAllInAList)
{
	EXPECT_FALSE(parseScenarioList("sleepy,homogeneous,sleepy").ok());
	EXPECT_FALSE(parseScenarioList("").ok());
	EXPECT_FALSE(parseScenarioList("sleepy,").ok());
	EXPECT_FALSE(parseScenarioList(",sleepy").ok());
	EXPECT_FALSE(parseScenarioList("all,sleepy").ok());
}

TEST(Scenarios, EveryKnownScenarioHasVmsAndDocumentation)
{
	for (const ScenarioInfo &info : knownScenarios()) {
		EXPECT_FALSE(info.mix.empty()) << info.name;
		EXPECT_FALSE(info.purpose.empty()) << info.name;
		for (unsigned k : { 1u, 2u, 4u })
			EXPECT_FALSE(scenarioVms(info.name, k, kParams).empty()) << info.name << " " << k;
	}
	EXPECT_TRUE(scenarioVms("nonsense", 2, kParams).empty());
}

TEST(Scenarios, HomogeneousIsKFullLockVmsWithTheMatrixLock)
{
	const auto vms = scenarioVms("homogeneous", 3, kParams);

	ASSERT_EQ(vms.size(), 3u);
	for (const VmTemplate &vm : vms) {
		EXPECT_EQ(vm.role, VmRole::Lock);
		EXPECT_EQ(vm.vcpus, 2u);
		EXPECT_EQ(vm.args, (std::vector<std::string>{ "mode=lock", "lock=ticket", "cs=500ns", "think=2us", "duration=1s" }));
		EXPECT_EQ(vm.duty, 1.0);
	}
}

TEST(Scenarios, SleepyAddsHalfDutyPhases)
{
	const auto vms = scenarioVms("sleepy", 2, kParams);

	ASSERT_EQ(vms.size(), 2u);
	EXPECT_EQ(vms[0].args.back(), "busy=2ms");
	EXPECT_EQ(vms[0].args[vms[0].args.size() - 2], "idle=2ms");
	EXPECT_EQ(vms[0].args[1], "lock=ticket");
	EXPECT_DOUBLE_EQ(vms[0].duty, 0.5);
}

TEST(Scenarios, MixedSizesAlternateFullAndOneVcpuVmsToKTimesN)
{
	EXPECT_EQ(sizes(scenarioVms("mixed-sizes", 1, kParams)), (std::vector<unsigned>{ 2 }));
	EXPECT_EQ(sizes(scenarioVms("mixed-sizes", 2, kParams)), (std::vector<unsigned>{ 2, 1, 1 }));
	EXPECT_EQ(sizes(scenarioVms("mixed-sizes", 3, kParams)), (std::vector<unsigned>{ 2, 1, 2, 1 }));
	EXPECT_EQ(sizes(scenarioVms("mixed-sizes", 4, kParams)), (std::vector<unsigned>{ 2, 1, 2, 1, 2 }));
	ScenarioParams four = kParams;
	four.vcpus = 4;
	EXPECT_EQ(sizes(scenarioVms("mixed-sizes", 2, four)), (std::vector<unsigned>{ 4, 1, 1, 1, 1 }));
}

TEST(Scenarios, LockBarrierCpuIsKInterleavedTrios)
{
	const auto vms = scenarioVms("lock+barrier+cpu", 2, kParams);

	ASSERT_EQ(vms.size(), 6u);
	for (size_t i = 0; i < vms.size(); i += 3) {
		EXPECT_EQ(vms[i].role, VmRole::Lock);
		EXPECT_EQ(vms[i + 1].role, VmRole::Barrier);
		EXPECT_EQ(vms[i + 2].role, VmRole::Cpu);
	}
	EXPECT_EQ(vms[1].args, (std::vector<std::string>{ "mode=barrier", "think=2us", "duration=1s" }));
	EXPECT_EQ(vms[2], cpuVmTemplate(2, 1'000'000'000));
}

TEST(Scenarios, PvhaltOverridesTheLock)
{
	EXPECT_EQ(scenarioLocks("pvhalt", { "ticket", "mcs" }), (std::vector<std::string>{ "pvhalt" }));
	EXPECT_EQ(scenarioLocks("sleepy", { "ticket", "mcs" }), (std::vector<std::string>{ "ticket", "mcs" }));
	const auto vms = scenarioVms("pvhalt", 2, kParams);
	ASSERT_EQ(vms.size(), 2u);
	EXPECT_EQ(vms[0].args[1], "lock=pvhalt");
}

TEST(ExpandMatrix, DefaultScenarioIsHomogeneousWithItsVms)
{
	const auto runs = expandMatrix(twoByTwo());

	EXPECT_EQ(labels({ runs.begin(), runs.begin() + 5 }),
		  (std::vector<std::string>{ "homogeneous alone cfs lock/2 ticket", "homogeneous cell cfs lock/2 1x ticket",
					     "homogeneous cell coboost lock/2 1x ticket",
					     "homogeneous cell cfs lock/2 lock/2 2x ticket",
					     "homogeneous cell coboost lock/2 lock/2 2x ticket" }));
	for (const RunPlan &run : runs)
		EXPECT_EQ(run.poolCpus, 2u);
}

TEST(ExpandMatrix, AloneRunsPerDistinctTemplateBeforeTheScenariosCells)
{
	MatrixSpec spec = twoByTwo();
	spec.scenarios = { "mixed-sizes" };
	spec.policies = { { "cfs", true } };
	spec.repeats = 1;

	// k=1: lock/2; k=2: lock/2, lock/1, lock/1.
	EXPECT_EQ(labels(expandMatrix(spec)),
		  (std::vector<std::string>{ "mixed-sizes alone cfs lock/2 ticket", "mixed-sizes alone cfs lock/1 ticket",
					     "mixed-sizes cell cfs lock/2 1x ticket",
					     "mixed-sizes cell cfs lock/2 lock/1 lock/1 2x ticket" }));
}

TEST(ExpandMatrix, ScenariosRunInTurnInsideEachRepetitionEachWithItsOwnBaselines)
{
	MatrixSpec spec = twoByTwo();
	spec.scenarios = { "sleepy", "homogeneous" };
	spec.policies = { { "cfs", true } };
	spec.overcommit = { 2 };

	const auto runs = expandMatrix(spec);

	EXPECT_EQ(labels(runs), (std::vector<std::string>{
					"sleepy alone cfs lock/2 ticket", "sleepy cell cfs lock/2 lock/2 2x ticket",
					"homogeneous alone cfs lock/2 ticket", "homogeneous cell cfs lock/2 lock/2 2x ticket",
					"sleepy alone cfs lock/2 ticket", "sleepy cell cfs lock/2 lock/2 2x ticket",
					"homogeneous alone cfs lock/2 ticket", "homogeneous cell cfs lock/2 lock/2 2x ticket" }));
	EXPECT_EQ(runs[4].repeat, 1u);
	EXPECT_NE(runs[0].vms.front(), runs[2].vms.front());
}

TEST(ExpandMatrix, LockBarrierCpuMeasuresLockIndependentVmsAloneOncePerRepetition)
{
	MatrixSpec spec = twoByTwo();
	spec.scenarios = { "lock+barrier+cpu" };
	spec.policies = { { "cfs", false }, { "gang", true } };
	spec.overcommit = { 1 };
	spec.locks = { "ticket", "mcs" };
	spec.repeats = 1;
	spec.fairness = true;

	// The co-runner (= the trio's cpu VM) alone once, PLE on only; the barrier VM alone once
	// per PLE setting; the lock VM per lock and PLE setting.
	EXPECT_EQ(labels(expandMatrix(spec)),
		  (std::vector<std::string>{
			  "lock+barrier+cpu cpu-alone cfs cpu/2",
			  "lock+barrier+cpu alone cfs-nople lock/2 ticket", "lock+barrier+cpu alone cfs lock/2 ticket",
			  "lock+barrier+cpu alone cfs-nople barrier/2", "lock+barrier+cpu alone cfs barrier/2",
			  "lock+barrier+cpu cell cfs-nople lock/2 barrier/2 cpu/2 1x ticket",
			  "lock+barrier+cpu fairness cfs-nople lock/2 barrier/2 cpu/2 1x ticket",
			  "lock+barrier+cpu cell gang lock/2 barrier/2 cpu/2 1x ticket",
			  "lock+barrier+cpu fairness gang lock/2 barrier/2 cpu/2 1x ticket",
			  "lock+barrier+cpu alone cfs-nople lock/2 mcs", "lock+barrier+cpu alone cfs lock/2 mcs",
			  "lock+barrier+cpu cell cfs-nople lock/2 barrier/2 cpu/2 1x mcs",
			  "lock+barrier+cpu fairness cfs-nople lock/2 barrier/2 cpu/2 1x mcs",
			  "lock+barrier+cpu cell gang lock/2 barrier/2 cpu/2 1x mcs",
			  "lock+barrier+cpu fairness gang lock/2 barrier/2 cpu/2 1x mcs" }));
}

TEST(ExpandMatrix, FairnessRunsCarryTheCoRunner)
{
	MatrixSpec spec = twoByTwo();
	spec.fairness = true;

	for (const RunPlan &run : expandMatrix(spec)) {
		EXPECT_EQ(run.coRunner.has_value(), run.kind == RunKind::Fairness);
		if (run.coRunner) {
			EXPECT_EQ(*run.coRunner, cpuVmTemplate(2, spec.durationNs));
		}
	}
}

TEST(ExpandMatrix, PvhaltRunsOncePerCsWhateverTheLocks)
{
	MatrixSpec spec = twoByTwo();
	spec.scenarios = { "pvhalt" };
	spec.locks = { "ticket", "mcs" };
	spec.csNs = { 500, 2000 };
	spec.repeats = 1;

	const auto runs = expandMatrix(spec);

	// Per cs: 1 alone + 2 factors x 2 policies.
	ASSERT_EQ(runs.size(), 2u * (1 + 4));
	for (const RunPlan &run : runs) {
		EXPECT_EQ(run.lock, "pvhalt");
		EXPECT_EQ(run.vms.front().args[1], "lock=pvhalt");
	}
}

TEST(ValidateMatrix, RejectsNoScenarioAndAnEmptyPool)
{
	MatrixSpec spec = twoByTwo();
	spec.scenarios.clear();
	EXPECT_FALSE(validateMatrix(spec).ok());
	spec = twoByTwo();
	spec.poolCpus = 0;
	EXPECT_FALSE(validateMatrix(spec).ok());
}

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "sched/options.h"

namespace spindle::sched {
namespace {

TEST(SchedOptions, ParsePolicyNameAcceptsEveryListedPolicy)
{
	for (const PolicyDescription &d : policyDescriptions()) {
		auto kind = parsePolicyName(d.name);
		ASSERT_TRUE(kind.ok()) << d.name;
		EXPECT_EQ(policyName(*kind), d.name);
	}
}

TEST(SchedOptions, ParsePolicyNameRejectsUnknownNameListingKnownOnes)
{
	auto kind = parsePolicyName("fair");

	ASSERT_FALSE(kind.ok());
	EXPECT_NE(kind.error().message().find("'fair'"), std::string::npos);
	EXPECT_NE(kind.error().message().find("coboost"), std::string::npos);
}

TEST(SchedOptions, BoostSliceFlagTakesADuration)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "--boost-slice", "250us");

	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(o.boostSliceNs, 250'000u);
}

TEST(SchedOptions, FlagOutOfRangeIsRejectedNamingTheFlag)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "boost-slice", "10us");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--boost-slice"), std::string::npos);
	EXPECT_EQ(o.boostSliceNs, 1'000'000u);
}

TEST(SchedOptions, QuietTickFlagTakesADuration)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "quiet-tick", "25ms");

	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(o.quietTickNs, 25'000'000u);
}

TEST(SchedOptions, QuietTickOverASecondIsRejectedNamingTheFlag)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "quiet-tick", "2s");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--quiet-tick"), std::string::npos);
	EXPECT_EQ(o.quietTickNs, 10'000'000u);
}

TEST(SchedOptions, FifoPriority99IsRejectedBecauseTheSchedulerThreadNeedsOneAbove)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "fifo-priority", "99");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--fifo-priority"), std::string::npos);
}

TEST(SchedOptions, ShareGuardFlagsTakeTheirValues)
{
	SchedulerOptions o;

	ASSERT_TRUE(applySchedFlag(o, "share-window", "50ms").ok());
	ASSERT_TRUE(applySchedFlag(o, "share-slack", "10").ok());
	ASSERT_TRUE(applySchedFlag(o, "extend-poll", "20us").ok());

	EXPECT_EQ(o.shareWindowNs, 50'000'000u);
	EXPECT_EQ(o.shareSlackPercent, 10u);
	EXPECT_EQ(o.extendPollNs, 20'000u);
}

TEST(SchedOptions, ShareWindowBelowTenMillisecondsIsRejected)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "share-window", "1ms");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--share-window"), std::string::npos);
}

TEST(SchedOptions, ShareSlackAboveOneHundredPercentIsRejected)
{
	SchedulerOptions o;

	EXPECT_FALSE(applySchedFlag(o, "share-slack", "101").ok());
}

TEST(SchedOptions, OnlyPoliciesThatDebitAreShareGuarded)
{
	EXPECT_TRUE(policyIsShareGuarded(PolicyKind::Adaptive));
	EXPECT_TRUE(policyIsShareGuarded(PolicyKind::Coboost));
	EXPECT_FALSE(policyIsShareGuarded(PolicyKind::Cfs));
	EXPECT_FALSE(policyIsShareGuarded(PolicyKind::Gang));
}

TEST(SchedOptions, MalformedDurationIsRejected)
{
	SchedulerOptions o;

	EXPECT_FALSE(applySchedFlag(o, "--express-window", "50").ok());
	EXPECT_FALSE(applySchedFlag(o, "--express-window", "fast").ok());
}

TEST(SchedOptions, UnknownFlagIsRejected)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "--boost-harder", "1");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--boost-harder"), std::string::npos);
}

TEST(SchedOptions, DetectListEnablesOnlyTheNamedDetectors)
{
	SchedulerOptions o;

	ASSERT_TRUE(applySchedFlag(o, "--detect", "pv,hints").ok());

	EXPECT_FALSE(o.detectPle);
	EXPECT_FALSE(o.detectPattern);
	EXPECT_TRUE(o.detectPv);
	EXPECT_TRUE(o.detectHints);
}

TEST(SchedOptions, DetectListRejectsUnknownDetector)
{
	SchedulerOptions o;

	EXPECT_FALSE(applySchedFlag(o, "--detect", "pv,psychic").ok());
	EXPECT_TRUE(o.detectPle); // unchanged
}

TEST(SchedOptions, SamplingJoinsTheDefaultOnlyWherePauseNeverExitsUnlessAListNamesIt)
{
	SchedulerOptions defaults;
	SchedulerOptions listed;
	SchedulerOptions without;

	ASSERT_TRUE(applySchedFlag(listed, "--detect", "sample").ok());
	ASSERT_TRUE(applySchedFlag(without, "--detect", "pv,hints").ok());

	EXPECT_FALSE(defaults.detectSample);
	EXPECT_TRUE(defaults.sampleWherePauseNeverExits);
	EXPECT_TRUE(listed.detectSample);
	EXPECT_FALSE(listed.detectPv);
	EXPECT_FALSE(without.detectSample);
	EXPECT_FALSE(without.sampleWherePauseNeverExits);
}

TEST(SchedOptions, SampleThresholdsMustFitTheirWindow)
{
	SchedulerOptions o;
	ASSERT_TRUE(applySchedFlag(o, "--sample-window", "4").ok());
	ASSERT_TRUE(applySchedFlag(o, "--sample-high", "4").ok());

	EXPECT_FALSE(validateOptions(o).ok()) << "high must stay below the window";
	EXPECT_FALSE(applySchedFlag(o, "--sample-rate", "5").ok()) << "below 10 Hz";
	EXPECT_FALSE(applySchedFlag(o, "--sample-rate", "20000").ok()) << "above 10 kHz";
}

TEST(SchedOptions, NegativeCountIsRejected)
{
	SchedulerOptions o;

	EXPECT_FALSE(applySchedFlag(o, "--extend-count", "-1").ok());
	EXPECT_FALSE(applySchedFlag(o, "--extend-count", "0").ok());
}

TEST(SchedOptions, DefaultsAreValid)
{
	Status s = validateOptions(SchedulerOptions{});

	EXPECT_TRUE(s.ok()) << s.error().message();
}

TEST(SchedOptions, ValidateRejectsLowThresholdAboveHigh)
{
	SchedulerOptions o;
	o.spinLow = 10;
	o.spinHigh = 5;

	EXPECT_FALSE(validateOptions(o).ok());
}

TEST(SchedOptions, ValidateRejectsExtensionsThatCouldFillTheirWindow)
{
	SchedulerOptions o;
	o.extendMaxNs = 5'000'000;
	o.extendMaxPerWindow = 4;
	o.extendWindowNs = 10'000'000;

	EXPECT_FALSE(validateOptions(o).ok());
}

TEST(SchedOptions, TraceFormatIsJsonLinesUnlessPerfettoIsAskedFor)
{
	SchedulerOptions o;
	EXPECT_EQ(o.traceFormat, TraceFormat::JsonLines);

	ASSERT_TRUE(applySchedFlag(o, "--trace-format", "perfetto").ok());
	EXPECT_EQ(o.traceFormat, TraceFormat::Perfetto);
	ASSERT_TRUE(applySchedFlag(o, "trace-format", "jsonl").ok());
	EXPECT_EQ(o.traceFormat, TraceFormat::JsonLines);
}

TEST(SchedOptions, TraceFormatRejectsAnUnknownFormatNamingBoth)
{
	SchedulerOptions o;

	Status s = applySchedFlag(o, "trace-format", "chrome");

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("--trace-format"), std::string::npos);
	EXPECT_NE(s.error().message().find("jsonl or perfetto"), std::string::npos);
	EXPECT_EQ(o.traceFormat, TraceFormat::JsonLines);
}

TEST(SchedOptions, ChoiceFlagsTakeTheirNamesAndListThemOtherwise)
{
	SchedulerOptions o;

	ASSERT_TRUE(applySchedFlag(o, "boost-class", "deadline").ok());
	ASSERT_TRUE(applySchedFlag(o, "event-loop", "epoll").ok());
	Status badClass = applySchedFlag(o, "boost-class", "rr");
	Status badLoop = applySchedFlag(o, "event-loop", "poll");

	EXPECT_EQ(o.boostClass, BoostClass::Deadline);
	EXPECT_TRUE(o.forceEpoll);
	ASSERT_FALSE(badClass.ok());
	ASSERT_FALSE(badLoop.ok());
	EXPECT_EQ(badClass.error().message(), "--boost-class: unknown class 'rr' (use deadline or fifo)");
	EXPECT_EQ(badLoop.error().message(), "--event-loop: unknown kind 'poll' (use uring or epoll)");
}

TEST(SchedOptions, PerfettoTraceFormatNeedsATracePath)
{
	SchedulerOptions o;
	ASSERT_TRUE(applySchedFlag(o, "trace-format", "perfetto").ok());

	Status without = validateOptions(o);
	ASSERT_TRUE(applySchedFlag(o, "trace", "/tmp/t.json").ok());

	ASSERT_FALSE(without.ok());
	EXPECT_NE(without.error().message().find("--trace PATH"), std::string::npos);
	EXPECT_TRUE(validateOptions(o).ok());
}

TEST(SchedOptions, EveryListedFlagIsKnownToTheParser)
{
	for (const FlagDescription &f : schedFlags()) {
		SchedulerOptions o;
		Status s = applySchedFlag(o, f.name, "");
		// An empty value is never valid, but the error must be about the value, not the name.
		ASSERT_FALSE(s.ok()) << f.name;
		EXPECT_EQ(s.error().message().find("unknown scheduler flag"), std::string::npos) << f.name;
	}
}


// The help must say the defaults the scheduler really uses (a default once changed in the struct
// and in the wrong help line: --spin-low said 1, --sample-low 2).
TEST(SchedOptions, DetectorFlagsHelpStatesTheDefaults)
{
	const SchedulerOptions defaults;
	const std::pair<std::string_view, uint32_t> expected[] = {
		{ "spin-low", defaults.spinLow },           { "spin-high", defaults.spinHigh },
		{ "sample-window", defaults.sampleWindow }, { "sample-low", defaults.sampleLow },
		{ "sample-high", defaults.sampleHigh },
	};

	for (const auto &[name, value] : expected) {
		const auto &flags = schedFlags();
		// clang 14 cannot capture a structured binding: by a plain copy.
		const std::string_view wanted = name;
		const auto flag = std::find_if(flags.begin(), flags.end(), [wanted](const FlagDescription &f) { return f.name == wanted; });
		ASSERT_NE(flag, flags.end()) << name;
		const std::string said = "(default " + std::to_string(value);
		EXPECT_NE(flag->help.find(said), std::string_view::npos) << name << ": " << flag->help;
	}
}

} // namespace
} // namespace spindle::sched

// lockbench's parameter parser and latency histogram (guest-kernels/lockbench/).

#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "guest-kernels/lockbench/histogram.h"
#include "guest-kernels/lockbench/params.h"

namespace {

using namespace spindle::lockbench;

struct ParseOutcome {
	bool ok;
	Params params;
	std::string error;
};

ParseOutcome parse(const char *args)
{
	ParseOutcome outcome{};
	char error[SPINDLE_PV_ERROR_TEXT_MAX] = {};
	outcome.ok = parseParams(args, outcome.params, error, sizeof(error));
	outcome.error = error;
	return outcome;
}

// All fields at once, so a test states the whole expected outcome in one line.
std::tuple<uint32_t, uint32_t, uint64_t, uint64_t, uint64_t> fields(const Params &p)
{
	return { p.mode, p.lock, p.csNs, p.thinkNs, p.durationNs };
}

uint64_t durationOf(const char *text)
{
	uint64_t ns = 0;
	spindle::guest::StrView view{ text, std::char_traits<char>::length(text) };
	EXPECT_TRUE(parseDurationNs(view, ns)) << text;
	return ns;
}

bool durationIsMalformed(const char *text)
{
	uint64_t ns = 0;
	return !parseDurationNs({ text, std::char_traits<char>::length(text) }, ns);
}

// ---- Durations --------------------------------------------------------------------------------

TEST(LockbenchDuration, AcceptsEachUnit)
{
	EXPECT_EQ(durationOf("500ns"), 500u);
	EXPECT_EQ(durationOf("2us"), 2000u);
	EXPECT_EQ(durationOf("3ms"), 3000000u);
	EXPECT_EQ(durationOf("4s"), 4000000000u);
}

TEST(LockbenchDuration, AcceptsFractionsToTheNanosecond)
{
	EXPECT_EQ(durationOf("1.5ms"), 1500000u);
	EXPECT_EQ(durationOf("0.25us"), 250u);
	EXPECT_EQ(durationOf("1.000000001s"), 1000000001u);
}

TEST(LockbenchDuration, DropsFractionDigitsBelowOneNanosecond)
{
	EXPECT_EQ(durationOf("1.5ns"), 1u);
	EXPECT_EQ(durationOf("0.1234567899s"), 123456789u);
}

TEST(LockbenchDuration, AcceptsABareZero)
{
	EXPECT_EQ(durationOf("0"), 0u);
}

TEST(LockbenchDuration, SaturatesInsteadOfOverflowing)
{
	EXPECT_EQ(durationOf("99999999999999999999999s"), UINT64_MAX);
	EXPECT_EQ(durationOf("18446744073709551615s"), UINT64_MAX);
}

TEST(LockbenchDuration, RejectsMalformedText)
{
	EXPECT_TRUE(durationIsMalformed(""));
	EXPECT_TRUE(durationIsMalformed("5"));
	EXPECT_TRUE(durationIsMalformed("ms"));
	EXPECT_TRUE(durationIsMalformed("1.ms"));
	EXPECT_TRUE(durationIsMalformed(".5ms"));
	EXPECT_TRUE(durationIsMalformed("5 ms"));
	EXPECT_TRUE(durationIsMalformed("5min"));
	EXPECT_TRUE(durationIsMalformed("-5ms"));
	EXPECT_TRUE(durationIsMalformed("1.5.5ms"));
}

// ---- Whole argument strings -------------------------------------------------------------------

TEST(LockbenchParams, EmptyArgumentsGiveTheDefaults)
{
	ParseOutcome outcome = parse("");

	ASSERT_TRUE(outcome.ok) << outcome.error;
	EXPECT_EQ(fields(outcome.params), fields({ SPINDLE_MODE_LOCK, SPINDLE_LOCK_TICKET, 500, 2000, 1000000000 }));
}

TEST(LockbenchParams, ParsesEveryKey)
{
	ParseOutcome outcome = parse("mode=barrier lock=mcs cs=1us think=0 duration=1.5s");

	ASSERT_TRUE(outcome.ok) << outcome.error;
	EXPECT_EQ(fields(outcome.params), fields({ SPINDLE_MODE_BARRIER, SPINDLE_LOCK_MCS, 1000, 0, 1500000000 }));
}

TEST(LockbenchParams, KnowsEveryLockName)
{
	const std::pair<const char *, uint32_t> locks[] = {
		{ "lock=ticket", SPINDLE_LOCK_TICKET }, { "lock=tas", SPINDLE_LOCK_TAS },
		{ "lock=ttas", SPINDLE_LOCK_TTAS },     { "lock=mcs", SPINDLE_LOCK_MCS },
		{ "lock=qspin", SPINDLE_LOCK_QSPIN },   { "lock=pvticket", SPINDLE_LOCK_PVTICKET },
		{ "lock=pvhalt", SPINDLE_LOCK_PVHALT },
	};
	for (const auto &[args, kind] : locks) {
		ParseOutcome outcome = parse(args);
		ASSERT_TRUE(outcome.ok) << args << ": " << outcome.error;
		EXPECT_EQ(outcome.params.lock, kind) << args;
		EXPECT_STREQ(lockName(kind), args + 5);
	}
}

TEST(LockbenchParams, KnowsEveryModeName)
{
	EXPECT_EQ(parse("mode=lock").params.mode, uint32_t{ SPINDLE_MODE_LOCK });
	EXPECT_EQ(parse("mode=barrier").params.mode, uint32_t{ SPINDLE_MODE_BARRIER });
	EXPECT_EQ(parse("mode=cpu").params.mode, uint32_t{ SPINDLE_MODE_CPU });
}

TEST(LockbenchParams, ToleratesRunsOfSpaces)
{
	ParseOutcome outcome = parse("  lock=tas    cs=1us  ");

	ASSERT_TRUE(outcome.ok) << outcome.error;
	EXPECT_EQ(outcome.params.lock, uint32_t{ SPINDLE_LOCK_TAS });
	EXPECT_EQ(outcome.params.csNs, 1000u);
}

TEST(LockbenchParams, LaterKeyWins)
{
	EXPECT_EQ(parse("lock=tas lock=mcs").params.lock, uint32_t{ SPINDLE_LOCK_MCS });
}

TEST(LockbenchParams, AcceptsTheBoundsThemselves)
{
	ParseOutcome outcome = parse("cs=10ms think=10ms duration=600s");
	EXPECT_TRUE(outcome.ok) << outcome.error;
	EXPECT_TRUE(parse("duration=1ms").ok);
}

// Bad input is rejected with one line that says what was wrong and what is expected.
struct BadInput {
	const char *args;
	const char *error;
};

class LockbenchParamsError : public ::testing::TestWithParam<BadInput>
{
};

TEST_P(LockbenchParamsError, RejectsWithAClearMessage)
{
	ParseOutcome outcome = parse(GetParam().args);

	EXPECT_FALSE(outcome.ok);
	EXPECT_EQ(outcome.error, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
	BadInputs, LockbenchParamsError,
	::testing::Values(
		BadInput{ "lock=foo",
			  "lockbench: unknown lock 'foo' (expected ticket, tas, ttas, mcs, qspin, pvticket, pvhalt)" },
		BadInput{ "mode=spin", "lockbench: unknown mode 'spin' (expected lock, barrier, cpu)" },
		BadInput{ "cs=1us locks=mcs",
			  "lockbench: unknown key 'locks' (expected mode, lock, cs, think, duration, idle, busy)" },
		BadInput{ "mcs", "lockbench: argument 'mcs' is not key=value" },
		BadInput{ "think=fast", "lockbench: bad duration 'think=fast' (expected a number with unit ns, "
					"us, ms or s, e.g. 500ns or 1.5ms)" },
		BadInput{ "duration=0s", "lockbench: duration=0s out of range (1ms to 600s allowed)" },
		BadInput{ "cs=11ms", "lockbench: cs=11ms out of range (0 to 10ms allowed)" },
		BadInput{ "idle=2s busy=1ms", "lockbench: idle=2s out of range (0 to 1s allowed)" },
		BadInput{ "idle=1ms busy=11s", "lockbench: busy=11s out of range (0 to 10s allowed)" },
		BadInput{ "idle=soon", "lockbench: bad duration 'idle=soon' (expected a number with unit ns, "
				       "us, ms or s, e.g. 500ns or 1.5ms)" },
		BadInput{ "idle=1ms", "lockbench: idle and busy go together (both 0: always busy; both > 0: alternate)" },
		BadInput{ "busy=1ms", "lockbench: idle and busy go together (both 0: always busy; both > 0: alternate)" },
		BadInput{ "idle=1ms busy=1ms idle=0",
			  "lockbench: idle and busy go together (both 0: always busy; both > 0: alternate)" },
		BadInput{ "idle=1ms busy=2ms mode=barrier",
			  "lockbench: idle and busy apply to mode=lock and mode=cpu (a blocked vCPU would stall every "
			  "barrier round)" }));

TEST(LockbenchParams, IdleAndBusyDefaultToAlwaysBusy)
{
	ParseOutcome outcome = parse("lock=pvhalt");

	ASSERT_TRUE(outcome.ok) << outcome.error;
	EXPECT_EQ(outcome.params.idleNs, 0u);
	EXPECT_EQ(outcome.params.busyNs, 0u);
	EXPECT_FALSE(outcome.params.sleepy());
}

TEST(LockbenchParams, IdleAndBusyTakeDurationsInLockAndCpuModes)
{
	ParseOutcome lock = parse("idle=1.5ms busy=500us lock=pvhalt");
	ParseOutcome cpu = parse("mode=cpu busy=10s idle=1s");

	ASSERT_TRUE(lock.ok) << lock.error;
	ASSERT_TRUE(cpu.ok) << cpu.error;
	EXPECT_EQ(lock.params.idleNs, 1'500'000u);
	EXPECT_EQ(lock.params.busyNs, 500'000u);
	EXPECT_TRUE(lock.params.sleepy());
	EXPECT_EQ(cpu.params.idleNs, kMaxIdleNs);
	EXPECT_EQ(cpu.params.busyNs, kMaxBusyNs);
	EXPECT_TRUE(parse("idle=0 busy=0 mode=barrier").ok) << "both 0 is the default, in every mode";
}

TEST(LockbenchParams, RejectsValuesPastTheirBounds)
{
	EXPECT_FALSE(parse("cs=10.000001ms").ok);
	EXPECT_FALSE(parse("think=11ms").ok);
	EXPECT_FALSE(parse("duration=999us").ok);
	EXPECT_FALSE(parse("duration=601s").ok);
	EXPECT_FALSE(parse("duration=99999999999999999999999s").ok);
}

TEST(LockbenchParams, RejectsAnEmptyValue)
{
	EXPECT_FALSE(parse("lock=").ok);
	EXPECT_FALSE(parse("cs=").ok);
}

TEST(LockbenchParams, ErrorTextFitsThePvErrorRecord)
{
	std::string longName(500, 'x');
	ParseOutcome outcome = parse(("lock=" + longName).c_str());

	EXPECT_FALSE(outcome.ok);
	EXPECT_EQ(outcome.error.size(), SPINDLE_PV_ERROR_TEXT_MAX - 1);
}

// ---- Histogram --------------------------------------------------------------------------------

TEST(LatencyHistogram, ZeroAndOneNanosecondShareTheFirstBucket)
{
	EXPECT_EQ(latencyBucket(0), 0u);
	EXPECT_EQ(latencyBucket(1), 0u);
}

TEST(LatencyHistogram, BucketsArePowersOfTwo)
{
	EXPECT_EQ(latencyBucket(2), 1u);
	EXPECT_EQ(latencyBucket(3), 1u);
	EXPECT_EQ(latencyBucket(4), 2u);
	EXPECT_EQ(latencyBucket(1023), 9u);
	EXPECT_EQ(latencyBucket(1024), 10u);
	EXPECT_EQ(latencyBucket((uint64_t{ 1 } << 39) - 1), 38u);
}

TEST(LatencyHistogram, LastBucketTakesEverythingAbove)
{
	EXPECT_EQ(latencyBucket(uint64_t{ 1 } << 39), SPINDLE_LATENCY_BUCKETS - 1);
	EXPECT_EQ(latencyBucket(UINT64_MAX), SPINDLE_LATENCY_BUCKETS - 1);
}

TEST(LatencyHistogram, RecordCountsIntoTheRightBucket)
{
	LatencyHistogram histogram;

	histogram.record(700);
	histogram.record(600);
	histogram.record(5);

	EXPECT_EQ(histogram.counts[9], 2u);
	EXPECT_EQ(histogram.counts[2], 1u);
}

} // namespace

#include <gtest/gtest.h>

#include "common/json.h"
#include "common/parse.h"
#include "common/rate_limiter.h"

using namespace spindle;

TEST(ParseSize, AcceptsSuffixesAsPowersOf1024)
{
	EXPECT_EQ(*parseSize("4096"), 4096u);
	EXPECT_EQ(*parseSize("64K"), 64u << 10);
	EXPECT_EQ(*parseSize("512M"), 512u << 20);
	EXPECT_EQ(*parseSize("2G"), 2ull << 30);
	EXPECT_EQ(*parseSize("3GiB"), 3ull << 30);
}

TEST(ParseSize, RejectsGarbageEmptyUnknownSuffixAndOverflow)
{
	EXPECT_FALSE(parseSize(""));
	EXPECT_FALSE(parseSize("M"));
	EXPECT_FALSE(parseSize("-1M"));
	EXPECT_FALSE(parseSize("12X"));
	EXPECT_FALSE(parseSize("1.5G"));
	EXPECT_FALSE(parseSize("99999999999999999999G"));
	EXPECT_FALSE(parseSize("17179869184G")); // 2^34 GiB overflows 64 bits
}

TEST(ParseDuration, ConvertsUnitsAndFractionsToNanoseconds)
{
	EXPECT_EQ(*parseDurationNs("500ns"), 500u);
	EXPECT_EQ(*parseDurationNs("2us"), 2000u);
	EXPECT_EQ(*parseDurationNs("1.5ms"), 1500000u);
	EXPECT_EQ(*parseDurationNs("3s"), 3000000000u);
}

// The whole part fits after scaling, but the fraction carries it past 2^64: it must not wrap
// ("18446744073.9s" was 290 ms). Found writing fuzz-parse's contract, confirmed by it.
TEST(ParseDuration, RejectsAFractionThatCarriesPast64Bits)
{
	EXPECT_FALSE(parseDurationNs("18446744073.9s"));
	EXPECT_FALSE(parseDurationNs("18446744073709.552ms"));
	EXPECT_FALSE(parseDurationNs("18446744073709551.7us"));
	EXPECT_EQ(*parseDurationNs("18446744073.709551615s"), UINT64_MAX);
	EXPECT_EQ(*parseDurationNs("18446744073709551.615us"), UINT64_MAX);
}

TEST(ParseDuration, RejectsMissingOrUnknownUnitAndNegative)
{
	EXPECT_FALSE(parseDurationNs("500"));
	EXPECT_FALSE(parseDurationNs("5min"));
	EXPECT_FALSE(parseDurationNs("-1ms"));
	EXPECT_FALSE(parseDurationNs("ms"));
	EXPECT_FALSE(parseDurationNs("1.ms"));
}

TEST(ParseUnsigned, EnforcesRangeAndRejectsTrailingText)
{
	EXPECT_EQ(*parseUnsigned("42", 1, 100), 42u);
	EXPECT_FALSE(parseUnsigned("0", 1, 100));
	EXPECT_FALSE(parseUnsigned("101", 1, 100));
	EXPECT_FALSE(parseUnsigned("4x", 1, 100));
	EXPECT_FALSE(parseUnsigned(" 4", 1, 100));
}

TEST(ParseCpuList, ExpandsRangesSortsAndDeduplicates)
{
	auto cpus = parseCpuList("3,0-1,1");
	ASSERT_TRUE(cpus);
	EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 3}));
}

TEST(ParseCpuList, RejectsReversedRangesEmptyPartsAndHugeIds)
{
	EXPECT_FALSE(parseCpuList(""));
	EXPECT_FALSE(parseCpuList("3-1"));
	EXPECT_FALSE(parseCpuList("0,,1"));
	EXPECT_FALSE(parseCpuList("0-99999"));
	EXPECT_FALSE(parseCpuList("a-b"));
}

TEST(RateLimiter, AllowsBurstThenRefusesUntilRefill)
{
	RateLimiter limiter(2, 1000);
	EXPECT_TRUE(limiter.allow(0));
	EXPECT_TRUE(limiter.allow(0));
	EXPECT_FALSE(limiter.allow(10));
	EXPECT_EQ(limiter.refused(), 1u);
	EXPECT_TRUE(limiter.allow(1000));
}

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters)
{
	EXPECT_EQ(jsonString("plain"), "\"plain\"");
	EXPECT_EQ(jsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
	EXPECT_EQ(jsonString("line\nbreak"), "\"line\\nbreak\"");
	EXPECT_EQ(jsonString(std::string("\x01\x1b", 2)), "\"\\u0001\\u001b\"");
}

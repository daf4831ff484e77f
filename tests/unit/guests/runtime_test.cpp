// The portable parts of the guest runtime: formatter, argument tokenizer, TSC conversion.

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "guest-kernels/runtime/args.h"
#include "guest-kernels/runtime/format.h"
#include "guest-kernels/runtime/tsc.h"

namespace {

using namespace spindle::guest;

template<typename... Args>
std::string formatted(const char *fmt, Args... args)
{
	char buf[128];
	format(buf, sizeof(buf), fmt, args...);
	return buf;
}

TEST(GuestFormat, FormatsIntegersInEachWidth)
{
	EXPECT_EQ(formatted("%d %u %x", -42, 42u, 255u), "-42 42 ff");
	EXPECT_EQ(formatted("%ld %lu", -1L, 1UL), "-1 1");
	EXPECT_EQ(formatted("%llu %lld", 18446744073709551615ULL, -9223372036854775807LL - 1),
		  "18446744073709551615 -9223372036854775808");
	EXPECT_EQ(formatted("%zu", size_t{ 7 }), "7");
}

TEST(GuestFormat, PadsToWidth)
{
	EXPECT_EQ(formatted("[%5d][%05d][%08x][%-3d]", 42, -42, 0xbeefu, 1), "[   42][-0042][0000beef][%-3d]");
}

TEST(GuestFormat, FormatsStringsAndCharacters)
{
	EXPECT_EQ(formatted("%s|%c|%%", "abc", 'z'), "abc|z|%");
	EXPECT_EQ(formatted("'%.*s'", 3, "abcdef"), "'abc'");
}

// A "%.*s" view is not NUL-terminated (lockbench prints argument tokens this way); the formatter
// must not read the byte after it. Only a sanitized build (scripts/test-sanitizers) sees the read:
// the view here is a heap block of exactly its length.
TEST(GuestFormat, PrecisionStringReadsNoFurtherThanThePrecision)
{
	std::unique_ptr<char[]> view(new char[3]{ 'a', 'b', 'c' });
	EXPECT_EQ(formatted("<%.*s>", 3, view.get()), "<abc>");
}

TEST(GuestFormat, TruncatesAndTerminates)
{
	char buf[6];
	size_t n = format(buf, sizeof(buf), "%s", "hello world");

	EXPECT_EQ(n, 5u);
	EXPECT_STREQ(buf, "hello");
}

TEST(GuestArgs, SplitsKeyValueTokens)
{
	ArgCursor cursor(" exit=3  debug a=b=c ");
	ArgToken token;

	ASSERT_TRUE(cursor.next(token));
	EXPECT_TRUE(token.key == "exit");
	EXPECT_TRUE(token.value == "3");
	ASSERT_TRUE(cursor.next(token));
	EXPECT_FALSE(token.hasValue);
	EXPECT_TRUE(token.text == "debug");
	ASSERT_TRUE(cursor.next(token));
	EXPECT_TRUE(token.key == "a");
	EXPECT_TRUE(token.value == "b=c");
	EXPECT_FALSE(cursor.next(token));
}

TEST(GuestArgs, StrViewComparesWholeText)
{
	StrView view{ "exit", 4 };

	EXPECT_TRUE(view == "exit");
	EXPECT_FALSE(view == "exi");
	EXPECT_FALSE(view == "exits");
}

TEST(GuestArgs, ParsesDecimalWithinMax)
{
	uint64_t value = 0;

	EXPECT_TRUE(parseDecimal({ "255", 3 }, 255, value));
	EXPECT_EQ(value, 255u);
	EXPECT_FALSE(parseDecimal({ "256", 3 }, 255, value));
	EXPECT_FALSE(parseDecimal({ "", 0 }, 255, value));
	EXPECT_FALSE(parseDecimal({ "1x", 2 }, 255, value));
	EXPECT_FALSE(parseDecimal({ "-1", 2 }, 255, value));
	EXPECT_FALSE(parseDecimal({ "18446744073709551616", 20 }, UINT64_MAX, value));
}

TEST(GuestArgs, ParsesDecimalWithAMaxBelowNine)
{
	uint64_t value = 0;

	EXPECT_FALSE(parseDecimal({ "7", 1 }, 5, value)); // max - digit must not wrap
	EXPECT_FALSE(parseDecimal({ "1", 1 }, 0, value));
	EXPECT_TRUE(parseDecimal({ "0", 1 }, 0, value));
	EXPECT_TRUE(parseDecimal({ "5", 1 }, 5, value));
	EXPECT_EQ(value, 5u);
}

TEST(GuestTsc, ConvertsBothWays)
{
	TscClock clock{ 2500000 }; // 2.5 GHz

	EXPECT_EQ(clock.toNs(2500), 1000u);
	EXPECT_EQ(clock.fromNs(1000), 2500u);
	EXPECT_EQ(clock.fromNs(600000000000ull), 1500000000000ull);
}

TEST(GuestTsc, DoesNotOverflowForTheLongestRun)
{
	TscClock clock{ 10000000 }; // 10 GHz, 600 s
	uint64_t ticks = 6000000000000ull;

	EXPECT_EQ(clock.toNs(ticks), 600000000000ull);
	EXPECT_EQ(clock.fromNs(600000000000ull), ticks);
}

} // namespace

// The tests' JSON checker (tests/support/json_check.h) and the once-per-process registry.

#include <gtest/gtest.h>

#include "common/json.h"
#include "common/say_once.h"
#include "tests/support/json_check.h"

using spindle::test::JsonChecker;

TEST(JsonChecker, AcceptsNestedValuesOfEveryKind)
{
	EXPECT_EQ(JsonChecker::problem(R"({"a": [1, -2.5e3, true, false, null, "x\"\u00e9"], "b": {}})"), "");
	EXPECT_EQ(JsonChecker::problem(" [] \n"), "");
}

TEST(JsonChecker, RefusesTruncatedEmptyAndTrailingText)
{
	EXPECT_NE(JsonChecker::problem(""), "");
	EXPECT_NE(JsonChecker::problem(R"({"a": [1, 2)"), "");
	EXPECT_NE(JsonChecker::problem(R"({"a": 1} x)"), "");
	EXPECT_NE(JsonChecker::problem(R"({"a": 1,})"), "");
	EXPECT_NE(JsonChecker::problem(R"({"a": 01x})"), "");
}

TEST(JsonChecker, RefusesRawControlCharactersInStrings)
{
	EXPECT_NE(JsonChecker::problem("[\"a\nb\"]"), "");
}

TEST(JsonString, EscapedTextIsValidJson)
{
	EXPECT_EQ(JsonChecker::problem(spindle::jsonString(std::string("q\"b\\\n\t\x01", 7))), "");
}

TEST(SayOnce, OnlyTheFirstAskIsTrue)
{
	EXPECT_TRUE(spindle::firstTimeInProcess("json-check-test-key"));
	EXPECT_FALSE(spindle::firstTimeInProcess("json-check-test-key"));
	EXPECT_TRUE(spindle::firstTimeInProcess("json-check-test-other-key"));
}

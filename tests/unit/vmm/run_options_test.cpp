#include <gtest/gtest.h>

#include "vmm/cli/run_options.h"

using namespace spindle;

namespace {
Result<RunOptions> parse(std::vector<std::string> args)
{
	return parseRunOptions(args, [](const std::string &name) { return name == "boost-slice"; });
}
} // namespace

TEST(RunOptions, SingleGuestWithCpusMemAndGuestArguments)
{
	auto options = parse({"hello", "-c", "4", "--mem=128M", "--", "exit=3", "x=y"});

	ASSERT_TRUE(options) << options.error().message();
	ASSERT_EQ(options->vms.size(), 1u);
	EXPECT_EQ(options->vms[0].guest, "hello");
	EXPECT_EQ(options->vms[0].cpus, 4u);
	EXPECT_EQ(options->vms[0].memBytes, 128u << 20);
	EXPECT_EQ(options->vms[0].args, (std::vector<std::string>{"exit=3", "x=y"}));
	EXPECT_EQ(options->vms[0].name, "vm0");
}

TEST(RunOptions, KernelPathWithoutGuestName)
{
	auto options = parse({"--kernel", "/tmp/k.elf"});
	ASSERT_TRUE(options);
	EXPECT_EQ(options->vms[0].kernelPath, "/tmp/k.elf");
}

// Found by fuzz-run-options: an empty GUEST was taken as a guest name, and the run failed later
// with "unknown guest ''".
TEST(RunOptions, RejectsAnEmptyGuestNameWhileParsing)
{
	auto options = parse({""});

	ASSERT_FALSE(options);
	EXPECT_NE(options.error().message().find("empty guest name"), std::string::npos) << options.error().message();
}

TEST(RunOptions, RejectsZeroNegativeAndAbsurdCpuCounts)
{
	EXPECT_FALSE(parse({"hello", "-c", "0"}));
	EXPECT_FALSE(parse({"hello", "-c", "-1"}));
	EXPECT_FALSE(parse({"hello", "-c", "100000"}));
	EXPECT_FALSE(parse({"hello", "-c"}));
}

TEST(RunOptions, RejectsZeroUnalignedTinyAndHugeMemory)
{
	EXPECT_FALSE(parse({"hello", "-m", "0"}));
	EXPECT_FALSE(parse({"hello", "-m", "1000"}));
	EXPECT_FALSE(parse({"hello", "-m", "1M"}));
	EXPECT_FALSE(parse({"hello", "-m", "1024G"}));
	EXPECT_FALSE(parse({"hello", "-m", "lots"}));
}

TEST(RunOptions, RejectsUnknownFlagsAndBadValuesWithAMessageNamingThem)
{
	auto unknown = parse({"hello", "--frobnicate"});
	ASSERT_FALSE(unknown);
	EXPECT_NE(unknown.error().message().find("--frobnicate"), std::string::npos);
	EXPECT_FALSE(parse({"hello", "--serial", "tcp"}));
	EXPECT_FALSE(parse({"hello", "--ple", "maybe"}));
	EXPECT_FALSE(parse({"hello", "--log-level", "loud"}));
	EXPECT_FALSE(parse({"hello", "--timeout", "0"}));
	EXPECT_FALSE(parse({"hello", "--spin-threshold", "0"}));
	EXPECT_FALSE(parse({"hello", "--pcpus", "3-1"}));
}

TEST(RunOptions, RejectsNoGuestTwoGuestsAndMixedForms)
{
	EXPECT_FALSE(parse({}));
	EXPECT_FALSE(parse({"hello", "lockbench"}));
	EXPECT_FALSE(parse({"hello", "--vm", "lockbench"}));
	EXPECT_FALSE(parse({"--vm", "lockbench", "-c", "2"}));
	EXPECT_FALSE(parse({"hello", "--kernel", "/x"}));
}

TEST(RunOptions, TimeoutInSecondsOrWithAUnit)
{
	EXPECT_EQ(parse({"hello", "--timeout", "5"})->timeoutMs, 5000u);
	EXPECT_EQ(parse({"hello", "--timeout", "250ms"})->timeoutMs, 250u);
}

// The 7-day limit of plain seconds holds with a unit too (found by fuzz-run-options).
TEST(RunOptions, TimeoutIsAtMostAWeekInEitherSpelling)
{
	EXPECT_EQ(parse({"hello", "--timeout", "604800"})->timeoutMs, 604'800'000u);
	EXPECT_EQ(parse({"hello", "--timeout", "604800s"})->timeoutMs, 604'800'000u);
	EXPECT_FALSE(parse({"hello", "--timeout", "604801"}));
	EXPECT_FALSE(parse({"hello", "--timeout", "604801s"}));
	EXPECT_FALSE(parse({"hello", "--timeout", "18446744073s"}));
}

TEST(RunOptions, SerialToFileAndOff)
{
	auto file = parse({"hello", "--serial", "file=/tmp/out.txt"});
	ASSERT_TRUE(file);
	EXPECT_EQ(file->serial, SerialMode::File);
	EXPECT_EQ(file->serialPath, "/tmp/out.txt");
	EXPECT_EQ(parse({"hello", "--serial", "off"})->serial, SerialMode::Off);
}

TEST(RunOptions, SchedulerFlagsArePassedThroughByName)
{
	auto options = parse({"hello", "--boost-slice", "2ms", "--policy", "coboost"});
	ASSERT_TRUE(options);
	ASSERT_EQ(options->schedFlags.size(), 1u);
	EXPECT_EQ(options->schedFlags[0].first, "boost-slice");
	EXPECT_EQ(options->schedFlags[0].second, "2ms");
	EXPECT_EQ(options->policy, "coboost");
}

TEST(VmSpec, ParsesGuestCpusMemAndQuotedArguments)
{
	auto spec = parseVmSpec("lockbench,cpus=4,mem=32M,args=\"lock=ticket cs=500ns\",name=a");

	ASSERT_TRUE(spec) << spec.error().message();
	EXPECT_EQ(spec->guest, "lockbench");
	EXPECT_EQ(spec->cpus, 4u);
	EXPECT_EQ(spec->memBytes, 32u << 20);
	EXPECT_EQ(spec->args, (std::vector<std::string>{"lock=ticket", "cs=500ns"}));
	EXPECT_EQ(spec->name, "a");
}

TEST(VmSpec, RejectsMissingGuestUnknownKeysBadValuesAndOpenQuotes)
{
	EXPECT_FALSE(parseVmSpec(""));
	EXPECT_FALSE(parseVmSpec("cpus=4"));
	EXPECT_FALSE(parseVmSpec("lockbench,color=red"));
	EXPECT_FALSE(parseVmSpec("lockbench,cpus=0"));
	EXPECT_FALSE(parseVmSpec("lockbench,mem=3"));
	EXPECT_FALSE(parseVmSpec("lockbench,args=\"lock=ticket"));
	EXPECT_FALSE(parseVmSpec("lockbench,cpus"));
}

TEST(VmSpec, RejectsNamesThatAreEmptyTooLongOrNotPlain)
{
	EXPECT_TRUE(parseVmSpec("hello,name=db-1.a_b"));
	EXPECT_FALSE(parseVmSpec("hello,name="));
	EXPECT_FALSE(parseVmSpec("hello,name=" + std::string(33, 'a')));
	EXPECT_FALSE(parseVmSpec("hello,name=a\"b"));
	EXPECT_FALSE(parseVmSpec("hello,name=a b"));
	EXPECT_FALSE(parseVmSpec("hello,name=x\x1b[2J"));
}

TEST(RunOptions, SeveralVmsGetDistinctDefaultNamesAndDuplicatesAreRefused)
{
	auto options = parse({"--vm", "lockbench,cpus=2", "--vm", "lockbench,cpus=2"});
	ASSERT_TRUE(options);
	EXPECT_EQ(options->vms[0].name, "vm0");
	EXPECT_EQ(options->vms[1].name, "vm1");
	EXPECT_FALSE(parse({"--vm", "hello,name=x", "--vm", "hello,name=x"}));
}

TEST(RunOptions, VmSpecWithKernelAndNoGuestName)
{
	auto options = parse({"--vm", "kernel=/tmp/k.elf,cpus=2"});

	ASSERT_TRUE(options) << options.error().message();
	EXPECT_EQ(options->vms[0].guest, "");
	EXPECT_EQ(options->vms[0].kernelPath, "/tmp/k.elf");
	EXPECT_EQ(options->vms[0].cpus, 2u);
}

TEST(RunOptions, VmSpecWithABundledNameAndAKernelIsRefused)
{
	auto options = parse({"--vm", "hello,kernel=/tmp/k.elf"});

	ASSERT_FALSE(options);
	EXPECT_NE(options.error().message().find("not both"), std::string::npos) << options.error().message();
}

TEST(RunOptions, GuestModeForTheRunAndPerVm)
{
	auto options = parse({"--guest-mode", "ring3", "--vm", "hello", "--vm", "hello,guest-mode=ring0"});

	ASSERT_TRUE(options) << options.error().message();
	EXPECT_EQ(options->guestMode, GuestModeChoice::Ring3);
	EXPECT_FALSE(options->vms[0].guestMode.has_value());
	EXPECT_EQ(options->vms[1].guestMode, GuestModeChoice::Ring0);
}

TEST(RunOptions, UnknownGuestModeIsRefused)
{
	EXPECT_FALSE(parse({"hello", "--guest-mode", "ring1"}));
	EXPECT_FALSE(parse({"--vm", "hello,guest-mode=user"}));
	auto defaults = parse({"hello"});
	ASSERT_TRUE(defaults);
	EXPECT_EQ(defaults->guestMode, GuestModeChoice::Auto);
}

TEST(RunOptions, VmSpecWithNeitherGuestNorKernelIsRefused)
{
	auto options = parse({"--vm", "cpus=2"});

	ASSERT_FALSE(options);
	EXPECT_NE(options.error().message().find("no guest"), std::string::npos) << options.error().message();
}

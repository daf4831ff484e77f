#include <gtest/gtest.h>

#include "spindle_abi.h"
#include "vmm/cli/run_options.h"
#include "vmm/runtime/guest_mode.h"
#include "vmm/runtime/session.h"

using namespace spindle;

namespace {
constexpr uint32_t kBoth = SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3;
constexpr uint32_t kNoNote = 0;
} // namespace

TEST(GuestMode, AutoPicksRingThreeUnderPvmForAGuestThatDeclaresIt)
{
	auto decision = chooseGuestMode(GuestModeChoice::Auto, KvmBackend::Pvm, kBoth);

	ASSERT_TRUE(decision);
	EXPECT_EQ(decision->mode, GuestMode::Ring3);
	EXPECT_TRUE(decision->warning.empty());
}

TEST(GuestMode, AutoKeepsRingZeroOnHardwareForHardwareSpinDetection)
{
	for (KvmBackend backend : {KvmBackend::Vmx, KvmBackend::Svm}) {
		auto decision = chooseGuestMode(GuestModeChoice::Auto, backend, kBoth);

		ASSERT_TRUE(decision);
		EXPECT_EQ(decision->mode, GuestMode::Ring0) << kvmBackendName(backend);
	}
}

TEST(GuestMode, AutoBootsAGuestWithoutTheNoteInRingZeroEvenUnderPvmAndSaysWhy)
{
	auto decision = chooseGuestMode(GuestModeChoice::Auto, KvmBackend::Pvm, kNoNote);

	ASSERT_TRUE(decision);
	EXPECT_EQ(decision->mode, GuestMode::Ring0);
	EXPECT_NE(decision->warning.find("emulates"), std::string::npos);
}

TEST(GuestMode, AutoOnAnUnknownBackendFollowsTheCalibration)
{
	auto emulated = chooseGuestMode(GuestModeChoice::Auto, KvmBackend::Unknown, kBoth, true);
	auto native = chooseGuestMode(GuestModeChoice::Auto, KvmBackend::Unknown, kBoth, false);

	ASSERT_TRUE(emulated && native);
	EXPECT_EQ(emulated->mode, GuestMode::Ring3);
	EXPECT_EQ(native->mode, GuestMode::Ring0);
}

TEST(GuestMode, ForcedRingThreeOnAGuestWithoutTheNoteIsAllowedWithAWarning)
{
	auto decision = chooseGuestMode(GuestModeChoice::Ring3, KvmBackend::Svm, kNoNote);

	ASSERT_TRUE(decision);
	EXPECT_EQ(decision->mode, GuestMode::Ring3);
	EXPECT_FALSE(decision->warning.empty());
}

TEST(GuestMode, ForcedRingZeroOnARingThreeOnlyGuestIsRefused)
{
	auto decision = chooseGuestMode(GuestModeChoice::Ring0, KvmBackend::Pvm, SPINDLE_GUEST_MODE_F_RING3);

	ASSERT_FALSE(decision);
	EXPECT_TRUE(decision.error().isInput());
}

TEST(GuestEnlightenment, DetectNoneOffersTheGuestNeitherHintsNorLongSpinRecords)
{
	auto options = parseRunOptions({"hello", "--detect", "none"}, isSchedulerFlag);
	ASSERT_TRUE(options) << options.error().message();

	auto enlightenment = guestEnlightenment(*options);

	ASSERT_TRUE(enlightenment);
	EXPECT_FALSE(enlightenment->hints);
	EXPECT_FALSE(enlightenment->longSpin);
	EXPECT_EQ(cpuidFeatures(*enlightenment), SPINDLE_CPUID_F_PV_DEVICE);
}

TEST(GuestEnlightenment, EveryDetectorOnOffersEverything)
{
	auto options = parseRunOptions({"hello"}, isSchedulerFlag);
	ASSERT_TRUE(options);

	auto enlightenment = guestEnlightenment(*options);

	ASSERT_TRUE(enlightenment);
	EXPECT_EQ(cpuidFeatures(*enlightenment),
		  SPINDLE_CPUID_F_PV_DEVICE | SPINDLE_CPUID_F_LONG_SPIN | SPINDLE_CPUID_F_HINTS);
}

TEST(GuestEnlightenment, HintsOffKeepsLongSpinRecords)
{
	auto options = parseRunOptions({"hello", "--detect", "pv"}, isSchedulerFlag);
	ASSERT_TRUE(options);

	auto enlightenment = guestEnlightenment(*options);

	ASSERT_TRUE(enlightenment);
	EXPECT_EQ(cpuidFeatures(*enlightenment), SPINDLE_CPUID_F_PV_DEVICE | SPINDLE_CPUID_F_LONG_SPIN);
}

// When the core lets the scheduler tick slowly (SchedCore::quietTickAllowed): only after a
// spell with no spin wait, and never while anything needs the fast tick to end or answer it.

#include <gtest/gtest.h>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

constexpr uint64_t kQuietAfterNs = SchedCore::kQuietAfterTicks * kMs; // the default 1 ms tick

// Ticks the core every 1 ms for durationNs.
void tickFor(Harness &h, uint64_t durationNs)
{
	for (uint64_t t = 0; t < durationNs; t += kMs) {
		h.clock.advance(kMs);
		h.core.tick();
	}
}

struct OneVm {
	explicit OneVm(PolicyKind policy) : h(withPolicy(policy))
	{
		vm = h.core.addVm("a", 2, nullptr);
		h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });
	}
	Harness h;
	int vm = -1;
};

TEST(QuietTick, IsNotAllowedBeforeTheCoreHasSeenAHundredTicksWithoutSpin)
{
	OneVm f(PolicyKind::Coboost);

	tickFor(f.h, kQuietAfterNs - kMs);

	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, IsAllowedAfterAHundredTicksWithoutSpin)
{
	OneVm f(PolicyKind::Coboost);

	tickFor(f.h, kQuietAfterNs);

	EXPECT_TRUE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, ASpinWaitInAnyVmEndsIt)
{
	OneVm f(PolicyKind::Coboost);
	int other = f.h.core.addVm("b", 2, nullptr);
	tickFor(f.h, kQuietAfterNs);
	ASSERT_TRUE(f.h.core.quietTickAllowed());

	f.h.core.spinDetected({ other, 1 }, SpinSource::Sampled);

	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, ComesBackAHundredTicksAfterTheLastSpin)
{
	OneVm f(PolicyKind::Coboost);
	f.h.core.spinDetected({ f.vm, 0 }, SpinSource::Sampled);

	tickFor(f.h, kQuietAfterNs - kMs);
	const bool justBefore = f.h.core.quietTickAllowed();
	tickFor(f.h, kMs);

	EXPECT_FALSE(justBefore);
	EXPECT_TRUE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, CfsKeepsItThroughSpinWaitsBecauseItAnswersNone)
{
	OneVm f(PolicyKind::Cfs);

	for (int i = 0; i < 200; ++i) {
		f.h.core.spinDetected({ f.vm, 0 }, SpinSource::Sampled);
		tickFor(f.h, kMs);
	}

	EXPECT_TRUE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, IsNotAllowedWhileAVcpuIsBoosted)
{
	OneVm f(PolicyKind::Cfs);
	ASSERT_TRUE(f.h.core.grantBoost({ f.vm, 1 }, 10 * kQuietAfterNs, BoostReason::Coboost, false));

	tickFor(f.h, 2 * kQuietAfterNs);

	EXPECT_TRUE(f.h.core.vcpu({ f.vm, 1 }).boosted);
	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, IsNotAllowedWhileAVcpuRepaysADebt)
{
	OneVm f(PolicyKind::Cfs);
	// 50 ms debited, repaid at 25% of wall time: 200 ms of debt, past the 100 ms spell.
	ASSERT_TRUE(f.h.core.grantBoost({ f.vm, 1 }, 50 * kMs, BoostReason::Express, true));
	f.h.core.endBoost({ f.vm, 1 }, false);

	tickFor(f.h, kQuietAfterNs + kMs);

	EXPECT_GT(f.h.core.vcpu({ f.vm, 1 }).debtNs, 0);
	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, GangNeverAllowsItBecauseTurnsChangeEveryQuantum)
{
	// Asked of the policy itself: the turn's boosts alone would keep the fast tick here.
	OneVm f(PolicyKind::Gang);

	tickFor(f.h, 2 * kQuietAfterNs);

	EXPECT_FALSE(f.h.core.policy().allowsQuietTicks(f.h.core));
}

TEST(QuietTick, ExtendNeverAllowsItBecauseHoldsAreExtendedWithoutSpins)
{
	OneVm f(PolicyKind::Extend);

	tickFor(f.h, 2 * kQuietAfterNs);

	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

// The pattern detector judges exits per fast tick; a quiet tick's count, scaled down, can hide a
// burst that one fast tick would have classified as a spin (the emulated host's coboost run
// with --detect pattern alone saw no spin in 214 of 215 quiet ticks).
TEST(QuietTick, QuietWindowWithMoreExitsThanTheHighThresholdEndsIt)
{
	OneVm f(PolicyKind::Coboost);
	tickFor(f.h, kQuietAfterNs);
	ASSERT_TRUE(f.h.core.quietTickAllowed());
	const uint32_t inWindow = f.h.core.options().spinHigh + 1;

	f.h.core.pauseExits({ f.vm, 0 }, 1, inWindow); // 1 per fast tick on average: no spin

	EXPECT_EQ(f.h.core.vm(f.vm).spinsTotal, 0u);
	EXPECT_FALSE(f.h.core.quietTickAllowed());
}

TEST(QuietTick, QuietWindowWithNoMoreExitsThanTheHighThresholdKeepsIt)
{
	OneVm f(PolicyKind::Coboost);
	tickFor(f.h, kQuietAfterNs);
	ASSERT_TRUE(f.h.core.quietTickAllowed());

	f.h.core.pauseExits({ f.vm, 0 }, 1, f.h.core.options().spinHigh);

	EXPECT_TRUE(f.h.core.quietTickAllowed());
}

// The same burst in a backed-off tick (tick_backoff.h watches activity()): it must bring the fast
// tick back, or the scaled-down count keeps the pattern detector blind for the whole run.
TEST(QuietTick, LongWindowWithMoreExitsThanTheHighThresholdCountsAsActivity)
{
	OneVm f(PolicyKind::Coboost);
	const uint64_t before = f.h.core.activity();

	f.h.core.pauseExits({ f.vm, 0 }, 1, f.h.core.options().spinHigh + 1);

	EXPECT_EQ(f.h.core.vm(f.vm).spinsTotal, 0u);
	EXPECT_GT(f.h.core.activity(), before);
}

TEST(QuietTick, LongWindowWithNoMoreExitsThanTheHighThresholdIsNoActivity)
{
	OneVm f(PolicyKind::Coboost);
	const uint64_t before = f.h.core.activity();

	f.h.core.pauseExits({ f.vm, 0 }, 1, f.h.core.options().spinHigh);

	EXPECT_EQ(f.h.core.activity(), before);
}

} // namespace
} // namespace spindle::sched::test

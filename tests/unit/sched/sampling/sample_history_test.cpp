// SampleHistory: RIP histories through the two thresholds, reports and their rate, stale gaps,
// and the CPL / TPR hints.

#include "sched/sampling/sample_history.h"

#include <gtest/gtest.h>

#include <vector>

namespace spindle::sched::sampling {
namespace {

constexpr uint64_t kMs = 1'000'000;

SpinVerdict spinLoop(uint64_t low, uint64_t end)
{
	SpinVerdict v;
	v.kind = SpinKind::PauseLoop;
	v.reason = NoSpinReason::None;
	v.loopLow = low;
	v.loopEnd = end;
	v.instructions = 6;
	return v;
}

SpinVerdict notSpin()
{
	SpinVerdict v;
	v.reason = NoSpinReason::NoLoop;
	return v;
}

// The rules' tests use a window of 8, low 2, high 5 (6 of the last 8): room to see the gap
// between the thresholds. The default (2 of 3) is a config like any other.
SampleHistoryConfig eightSampleWindow()
{
	SampleHistoryConfig c;
	c.window = 8;
	c.spinLow = 2;
	c.spinHigh = 5;
	return c;
}

// One sample per millisecond, from t = 1 ms.
struct Feeder {
	SampleHistory history;
	uint64_t now = 0;
	std::vector<SampleOutcome> outcomes;

	explicit Feeder(SampleHistoryConfig config = eightSampleWindow()) : history(config) {}

	SampleOutcome feed(uint64_t rip, const SpinVerdict &verdict, uint8_t cr8 = 0, uint8_t cpl = 3)
	{
		now += kMs;
		outcomes.push_back(history.feed(VcpuSample{now, rip, cpl, cr8, verdict}));
		return outcomes.back();
	}

	void feedSteady(unsigned n, uint64_t rip = 0x201cd5)
	{
		for (unsigned i = 0; i < n; i++)
			feed(rip + (i % 3) * 4, spinLoop(0x201cd0, 0x201ce4));
	}

	unsigned reports() const
	{
		unsigned n = 0;
		for (const auto &o : outcomes)
			n += o.report;
		return n;
	}
};

TEST(SampleHistory, DefaultConfigIsValid) { EXPECT_TRUE(validateConfig({})); }

TEST(SampleHistory, HighThresholdAtOrAboveTheWindowIsRefused)
{
	SampleHistoryConfig c;
	c.spinHigh = c.window;

	EXPECT_FALSE(validateConfig(c));
}

TEST(SampleHistory, LowAboveHighIsRefused)
{
	SampleHistoryConfig c = eightSampleWindow();
	c.spinLow = 6;
	c.spinHigh = 5;

	EXPECT_FALSE(validateConfig(c));
}

TEST(SampleHistory, SteadyRipInASpinLoopEntersSpinningAboveTheHighThreshold)
{
	Feeder f; // window 8, high 5: the first sample has no predecessor, so the 7th is the 6th spin-like

	f.feedSteady(6);
	bool before = f.history.spinning();
	f.feedSteady(1);

	EXPECT_FALSE(before);
	EXPECT_TRUE(f.history.spinning());
	EXPECT_TRUE(f.outcomes.back().entered);
	EXPECT_TRUE(f.outcomes.back().report);
}

TEST(SampleHistory, FirstSampleAloneIsNotSpinLike)
{
	Feeder f;

	SampleOutcome o = f.feed(0x201cd5, spinLoop(0x201cd0, 0x201ce4));

	EXPECT_FALSE(o.spinLike);
}

TEST(SampleHistory, WanderingRipInCodeThatIsNotASpinNeverSpins)
{
	Feeder f;

	for (uint64_t i = 0; i < 50; i++)
		f.feed(0x201000 + i * 0x97 % 0x1000, notSpin());

	EXPECT_FALSE(f.history.spinning());
	EXPECT_EQ(f.reports(), 0u);
}

TEST(SampleHistory, SpinVerdictsFarApartDoNotCountAsStaying)
{
	// Each sample is in some spin loop, but never the same one twice in a row.
	Feeder f;

	for (int i = 0; i < 40; i++) {
		uint64_t rip = i % 2 ? 0x201cd5 : 0x2025c6;
		f.feed(rip, i % 2 ? spinLoop(0x201cd0, 0x201ce4) : spinLoop(0x202560, 0x2025e6));
	}

	EXPECT_FALSE(f.history.spinning());
}

TEST(SampleHistory, RipAnywhereInsideALongLoopCountsAsStaying)
{
	// pvticket's loop spans 134 bytes: 0x2025e0 and 0x202560 are 128 apart, more than nearBytes.
	Feeder f;

	for (int i = 0; i < 10; i++)
		f.feed(i % 2 ? 0x2025e0 : 0x202560, spinLoop(0x202560, 0x2025e6));

	EXPECT_TRUE(f.history.spinning());
}

TEST(SampleHistory, AlternatingSpinAndWorkStaysBetweenTheThresholdsAndKeepsTheState)
{
	// Half the samples spin-like: 4 of 8, between low (2) and high (5): nothing changes.
	Feeder notYet;
	Feeder already;
	already.feedSteady(10);

	for (Feeder *f : {&notYet, &already})
		for (int i = 0; i < 24; i++) {
			if (i % 4 < 2)
				f->feed(0x201cd5, spinLoop(0x201cd0, 0x201ce4));
			else
				f->feed(0x201470, notSpin());
		}

	EXPECT_FALSE(notYet.history.spinning());
	EXPECT_TRUE(already.history.spinning());
}

TEST(SampleHistory, LeavingTheLoopEndsSpinningBelowTheLowThreshold)
{
	Feeder f;
	f.feedSteady(10);

	for (int i = 0; i < 7; i++)
		f.feed(0x201470, notSpin());

	EXPECT_FALSE(f.history.spinning()); // 1 spin-like left in the window: below 2
	EXPECT_TRUE(f.outcomes.back().left);
}

TEST(SampleHistory, HysteresisSamplesAfterTheLoopAreNotReported)
{
	Feeder f;
	f.feedSteady(10);
	unsigned before = f.reports();

	for (int i = 0; i < 5; i++)
		f.feed(0x201470, notSpin()); // still "spinning" by the thresholds, but not in the loop

	EXPECT_TRUE(f.history.spinning());
	EXPECT_EQ(f.reports(), before);
}

TEST(SampleHistory, StayingSpinningReportsAtMostOncePerInterval)
{
	SampleHistoryConfig c = eightSampleWindow();
	c.reportIntervalNs = 5 * kMs;
	Feeder f(c);

	f.feedSteady(7 + 40); // enters at the 7th sample (1 ms apart), then 40 ms more

	EXPECT_EQ(f.reports(), 1u + 40 / 5);
}

TEST(SampleHistory, LongGapForgetsTheHistory)
{
	Feeder f;
	f.feedSteady(10);

	f.now += 200 * kMs; // the vCPU did not run for a while
	SampleOutcome o = f.feed(0x201cd5, spinLoop(0x201cd0, 0x201ce4));

	EXPECT_FALSE(o.spinning);
	EXPECT_TRUE(o.left);
	EXPECT_FALSE(o.spinLike); // no predecessor any more
}

TEST(SampleHistory, ResetForgetsSpinning)
{
	Feeder f;
	f.feedSteady(10);

	f.history.reset();

	EXPECT_FALSE(f.history.spinning());
	EXPECT_EQ(f.history.spinLikeInWindow(), 0u);
}

TEST(SampleHistory, RaisedTprCountsOnlyOnceTheGuestWasSeenUsingIt)
{
	Feeder always;
	Feeder varies;

	for (int i = 0; i < 4; i++)
		always.feed(0x1000, notSpin(), 2);
	varies.feed(0x1000, notSpin(), 0);
	varies.feed(0x1000, notSpin(), 2);

	EXPECT_FALSE(always.history.hints().likelyHoldsLock);
	EXPECT_TRUE(varies.history.hints().tprInUse);
	EXPECT_TRUE(varies.history.hints().likelyHoldsLock);
}

TEST(SampleHistory, TprBackAtZeroIsNoLongerAHolder)
{
	Feeder f;
	f.feed(0x1000, notSpin(), 0);
	f.feed(0x1000, notSpin(), 2);

	f.feed(0x1000, notSpin(), 0);

	EXPECT_FALSE(f.history.hints().likelyHoldsLock);
}

TEST(SampleHistory, CplOfTheLastSampleIsExposed)
{
	Feeder f;

	f.feed(0x1000, notSpin(), 0, 0);

	EXPECT_EQ(f.history.hints().cpl, 0);
	EXPECT_TRUE(f.history.hints().kernelMode());
}

} // namespace
} // namespace spindle::sched::sampling

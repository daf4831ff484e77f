#include <gtest/gtest.h>

#include <vector>

#include "harness.h"
#include "spindle_abi.h"

namespace spindle::sched::test {
namespace {

// ---- Two-threshold pattern detector ---------------------------------------------------------

TEST(PatternDetector, CountAboveHighThresholdIsASpinWait)
{
	PatternDetector d(2, 8);

	EXPECT_TRUE(d.feed(9));
}

TEST(PatternDetector, CountBelowLowThresholdEndsASpinWait)
{
	PatternDetector d(2, 8);
	d.feed(9);

	EXPECT_FALSE(d.feed(1));
}

TEST(PatternDetector, CountBetweenThresholdsKeepsSpinning)
{
	PatternDetector d(2, 8);
	d.feed(9);

	EXPECT_TRUE(d.feed(5));
}

TEST(PatternDetector, CountBetweenThresholdsKeepsNotSpinning)
{
	PatternDetector d(2, 8);
	d.feed(0);

	EXPECT_FALSE(d.feed(5));
	EXPECT_FALSE(d.feed(8)); // the high threshold itself is not above it
}

TEST(SchedCore, PauseExitsAboveHighReportPatternSpin)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.pauseExits({ vm, 0 }, 100);
	h.core.pauseExits({ vm, 0 }, 5); // between thresholds: still spinning, reported again
	h.core.pauseExits({ vm, 0 }, 0);
	h.core.pauseExits({ vm, 0 }, 5); // between thresholds after not spinning: nothing

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.spins[static_cast<int>(SpinSource::Pattern)], 2u);
}

TEST(SchedCore, PauseExitsCountAsPleWhenPatternDetectorIsOff)
{
	SchedulerOptions o = withPolicy(PolicyKind::Cfs);
	o.detectPattern = false;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.pauseExits({ vm, 1 }, 1);

	EXPECT_EQ(h.core.vcpu({ vm, 1 }).counters.spins[static_cast<int>(SpinSource::Ple)], 1u);
}

// ---- PV notifications ------------------------------------------------------------------------

TEST(SchedCore, LongSpinWithinRateIntervalIsDropped)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm, 0 }, 1, 7);
	h.clock.advance(10 * kUs);
	h.core.longSpin({ vm, 0 }, 1, 7);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.pvAccepted, 1u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.pvDropped, 1u);
}

TEST(SchedCore, LongSpinAfterRateIntervalIsAccepted)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm, 0 }, 1, 7);
	h.clock.advance(h.core.options().pvMinIntervalNs);
	h.core.longSpin({ vm, 0 }, 1, 7);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.pvAccepted, 2u);
}

TEST(SchedCore, CoalescedLongSpinsBeyondOneAreCountedDropped)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm, 0 }, 1, 7, 50);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.pvAccepted, 1u);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.pvDropped, 49u);
}

TEST(SchedCore, LongSpinNamingVcpuOutsideTheVmIsCountedInvalidAndUnnamed)
{
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });

	h.core.longSpin({ vm, 0 }, 2, 7);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.hintsInvalid, 1u);
	EXPECT_EQ(Harness::count(h.take(), ActionKind::Boost), 0u);
}

TEST(SchedCore, LongSpinIgnoredWhenPvDetectorIsOff)
{
	SchedulerOptions o = withPolicy(PolicyKind::Cfs);
	o.detectPv = false;
	Harness h(o);
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm, 0 }, 1, 7);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.spins[static_cast<int>(SpinSource::Pv)], 0u);
	EXPECT_FALSE(h.core.vm(vm).reportsSpins); // so it stays sampled: the report is not believed
}

TEST(SchedCore, AcceptedLongSpinMarksItsVmAsReportingSpins)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int reporter = h.core.addVm("a", 2, nullptr);
	int silent = h.core.addVm("b", 2, nullptr);

	h.core.longSpin({ reporter, 1 }, 0, 7);

	EXPECT_TRUE(h.core.vm(reporter).reportsSpins);
	EXPECT_FALSE(h.core.vm(silent).reportsSpins); // still sampled: nothing tells us its spins
}

TEST(SchedCore, LongSpinFromAVcpuOutsideTheVmMarksNothing)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm, 5 }, 0, 7);

	EXPECT_FALSE(h.core.vm(vm).reportsSpins);
}

TEST(SchedCore, EventsForUnknownVmOrVcpuAreIgnored)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.longSpin({ vm + 1, 0 }, 1, 7);
	h.core.spinDetected({ vm, 9 }, SpinSource::Ple);
	h.core.vcpuState({ -1, 0 }, VcpuState::Running, 0);
	h.core.hintUpdate({ vm, 2 }, 1, 1, kNoVcpu);

	EXPECT_TRUE(h.take().empty());
}

// ---- Hint slots ------------------------------------------------------------------------------

TEST(SchedCore, HintSlotsAreSampledOnTick)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	std::vector<spindle_hint_slot> slots(2);
	for (auto &s : slots)
		s.waiting_on = SPINDLE_VCPU_NONE;
	int vm = h.core.addVm("a", 2, slots.data());
	slots[1].locks_held = 1;
	slots[1].seq = 1;

	h.core.tick();

	EXPECT_EQ(h.core.vcpu({ vm, 1 }).locksHeld, 1u);
}

TEST(SchedCore, HintWithUnchangedSeqIsNotReread)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.core.hintUpdate({ vm, 0 }, 5, 1, kNoVcpu);

	h.core.hintUpdate({ vm, 0 }, 5, 0, kNoVcpu);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).locksHeld, 1u);
}

TEST(SchedCore, HintLocksHeldAboveCapIsClampedAndCounted)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.hintUpdate({ vm, 0 }, 1, 0xffffffffu, kNoVcpu);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).locksHeld, kMaxLocksHeld);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.hintsInvalid, 1u);
}

TEST(SchedCore, HintWaitingOnOutOfRangeIsIgnoredAndCounted)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.hintUpdate({ vm, 0 }, 1, 0, 2);
	h.core.hintUpdate({ vm, 1 }, 1, 0, 1); // waits on itself

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).waitingOn, kNoVcpu);
	EXPECT_EQ(h.core.vcpu({ vm, 1 }).waitingOn, kNoVcpu);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.hintsInvalid + h.core.vcpu({ vm, 1 }).counters.hintsInvalid, 2u);
}

TEST(SchedCore, HintStartingToWaitCountsAHintSpin)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);

	h.core.hintUpdate({ vm, 0 }, 1, 0, 1);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.spins[static_cast<int>(SpinSource::Hint)], 1u);
}

// ---- Placement -------------------------------------------------------------------------------

TEST(SchedCore, VcpusArePlacedRoundRobinAcrossVms)
{
	Harness h(withPolicy(PolicyKind::Cfs), { 4, 5 });

	int a = h.core.addVm("a", 3, nullptr);
	int b = h.core.addVm("b", 1, nullptr);

	EXPECT_EQ(h.core.vcpu({ a, 0 }).homeCpu, 4);
	EXPECT_EQ(h.core.vcpu({ a, 1 }).homeCpu, 5);
	EXPECT_EQ(h.core.vcpu({ a, 2 }).homeCpu, 4);
	EXPECT_EQ(h.core.vcpu({ b, 0 }).homeCpu, 5);
}

// ---- Ledger ----------------------------------------------------------------------------------

TEST(Ledger, DebitedBoostPutsTheVcpuInDebtAndPenalizesItAfterward)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	ASSERT_TRUE(h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true));

	h.clock.advance(kMs);
	h.core.expire();

	auto actions = h.take();
	const Action *nice = Harness::find(actions, ActionKind::SetNice, { vm, 0 });
	ASSERT_NE(nice, nullptr);
	EXPECT_EQ(nice->nice, h.core.options().debtNice);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, static_cast<int64_t>(kMs));
}

TEST(Ledger, BoostIsDeniedWhileInDebt)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true);
	h.clock.advance(kMs);
	h.core.expire();

	bool granted = h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true);

	EXPECT_FALSE(granted);
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.deniedDebt, 1u);
}

TEST(Ledger, DebtIsRepaidAtRepayPercentOfWallTime)
{
	Harness h(withPolicy(PolicyKind::Cfs)); // repayPercent 25
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true);
	h.clock.advance(kMs);
	h.core.tick();
	h.take();

	h.clock.advance(2 * kMs);
	h.core.tick();
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, static_cast<int64_t>(kMs / 2));

	h.clock.advance(2 * kMs);
	h.core.tick();
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, 0);
	const std::vector<Action> actions = h.take();
	const Action *nice = Harness::find(actions, ActionKind::SetNice, { vm, 0 });
	ASSERT_NE(nice, nullptr);
	EXPECT_EQ(nice->nice, 0);
}

TEST(Ledger, BoostIsGrantedAgainOnceRepaid)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.tick();
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true);
	h.clock.advance(kMs);
	h.core.tick();

	h.clock.advance(4 * kMs);
	h.core.tick();

	EXPECT_TRUE(h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Express, true));
}

TEST(Ledger, EarlyEndCreditsTheUnusedBudget)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Extend, true);

	h.clock.advance(100 * kUs);
	h.core.endBoost({ vm, 0 }, true);

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, static_cast<int64_t>(100 * kUs));
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.boostedNs, 100 * kUs);
}

TEST(Ledger, UndebitedBoostLeavesNoDebt)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Gang, false);

	h.clock.advance(kMs);
	h.core.expire();

	EXPECT_EQ(h.core.vcpu({ vm, 0 }).debtNs, 0);
	EXPECT_EQ(Harness::count(h.take(), ActionKind::SetNice), 0u);
}

TEST(Ledger, NotificationFloodKeepsVmWithinItsShare)
{
	// A hostile guest sends a long-spin notification every microsecond for a second, naming
	// a de-scheduled sibling. Whatever it sends, what it got beyond its share (boosted time not
	// yet repaid) stays within 1% of the window, and the excess is counted as dropped.
	Harness h(withPolicy(PolicyKind::Express));
	int vm = h.core.addVm("hostile", 2, nullptr);
	h.setStates(vm, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });
	const uint64_t window = 1'000 * kMs;
	uint64_t nextTick = h.clock.nowNs() + kMs;

	for (uint64_t t = 0; t < window; t += kUs) {
		h.core.longSpin({ vm, 0 }, 1, 7);
		h.clock.advance(kUs);
		if (h.clock.nowNs() >= nextTick) {
			h.core.tick();
			nextTick += kMs;
		}
		h.core.expire();
	}

	const VmModel &m = h.core.vm(vm);
	uint64_t boosted = 0, repaid = 0, dropped = 0;
	for (const VcpuModel &v : m.vcpus) {
		boosted += v.counters.boostedNs;
		repaid += v.counters.repaidNs;
		dropped += v.counters.pvDropped;
	}
	EXPECT_GT(dropped, 900'000u);
	EXPECT_LE(boosted - repaid, window / 100);
	EXPECT_LE(boosted, window / 4); // express + repayment cap the boosted share at 20%
}

// ---- VM lifecycle and metrics ----------------------------------------------------------------

TEST(SchedCore, RemovingAVmEndsItsBoosts)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.core.grantBoost({ vm, 1 }, kMs, BoostReason::Coboost, true);
	h.take();

	h.core.removeVm(vm);

	EXPECT_EQ(Harness::count(h.take(), ActionKind::Unboost, { vm, 1 }), 1u);
	EXPECT_FALSE(h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Coboost, true));
}

TEST(VmModel, ReadyVcpusCountAnUnstartedVcpuOnlyWhenAskedTo)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 3, nullptr);
	h.core.vcpuState({ vm, 0 }, VcpuState::Runnable, 0);
	h.core.vcpuState({ vm, 1 }, VcpuState::Halted, 1);

	EXPECT_EQ(h.core.vm(vm).readyVcpus(), 1u);
	EXPECT_EQ(h.core.vm(vm).readyVcpus(VmModel::Unobserved::Ready), 2u);
}

TEST(SchedCore, NextExpiryIsTheEarliestBoostEnd)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	uint64_t t0 = h.clock.nowNs();

	h.core.grantBoost({ vm, 0 }, kMs, BoostReason::Coboost, true);
	h.core.grantBoost({ vm, 1 }, 50 * kUs, BoostReason::Express, true);

	EXPECT_EQ(h.core.nextExpiryNs(), t0 + 50 * kUs);
}

TEST(SchedMetrics, JsonEscapesNamesAndCarriesCounters)
{
	Harness h(withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("we\"ird\\name\n", 2, nullptr);
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	std::string json;
	h.core.writeMetricsJson(json);

	EXPECT_NE(json.find("\"policy\":\"coboost\""), std::string::npos);
	EXPECT_NE(json.find("\"we\\\"ird\\\\name\\n\""), std::string::npos);
	EXPECT_NE(json.find("\"spins_ple\":1"), std::string::npos);
	EXPECT_EQ(json.find('\n'), std::string::npos);
}

TEST(SchedMetrics, ControlCharactersAreUnicodeEscaped)
{
	std::string out;

	appendJsonString(out, std::string("a\x01z", 3));

	EXPECT_EQ(out, "\"a\\u0001z\"");
}

} // namespace
} // namespace spindle::sched::test

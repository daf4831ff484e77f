// The parking state machine of WAIT and KICK on injected time, then its thread-safe wrapper
// with real threads and short timeouts.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "devices/pv_record.h"
#include "vmm/runtime/vcpu_parking.h"

using namespace spindle;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'000 * kMs; // a monotonic clock does not start at 0

} // namespace

TEST(VcpuParking, AWaitParksUntilTheTimeoutItAskedFor)
{
	VcpuParking parking(2);

	WaitDecision d = parking.wait(1, true, 5 * kMs, kT0);

	ASSERT_TRUE(d.park);
	EXPECT_EQ(d.untilNs, kT0 + 5 * kMs);
	EXPECT_TRUE(parking.parked(1));
	EXPECT_EQ(parking.nextDeadlineNs(), kT0 + 5 * kMs);
}

TEST(VcpuParking, AKickBeforeTheWaitIsRememberedOnce)
{
	VcpuParking parking(2);

	EXPECT_EQ(parking.kick(0, 1, kT0), KickResult::Pending);
	WaitDecision first = parking.wait(1, true, 0, kT0 + 1);
	WaitDecision second = parking.wait(1, true, 0, kT0 + 2);

	EXPECT_FALSE(first.park);
	EXPECT_EQ(first.reason, WakeReason::Kick);
	EXPECT_TRUE(second.park) << "one kick is consumed by one wait";
	EXPECT_EQ(parking.counters(1).waitsReturnedAtOnce, 1u);
}

TEST(VcpuParking, APendingKickIsConsumedEvenWhenTheConditionIsAlreadyFalse)
{
	VcpuParking parking(2);
	parking.kick(0, 1, kT0);

	WaitDecision d = parking.wait(1, false, 0, kT0);

	EXPECT_FALSE(d.park);
	EXPECT_TRUE(parking.wait(1, true, 0, kT0).park) << "the kick must not linger for a later wait";
}

TEST(VcpuParking, AWaitWhoseConditionIsFalseReturnsAtOnce)
{
	VcpuParking parking(1);

	WaitDecision d = parking.wait(0, false, kMs, kT0);

	EXPECT_FALSE(d.park);
	EXPECT_EQ(d.reason, WakeReason::ConditionFalse);
	EXPECT_FALSE(parking.parked(0));
}

TEST(VcpuParking, AKickWakesAParkedVcpuAndCountsTheParkedTime)
{
	VcpuParking parking(2);
	parking.wait(1, true, 0, kT0);

	EXPECT_EQ(parking.kick(0, 1, kT0 + 3 * kMs), KickResult::Woken);

	EXPECT_FALSE(parking.parked(1));
	EXPECT_EQ(parking.lastWake(1), WakeReason::Kick);
	EXPECT_EQ(parking.counters(1).wakesByKick, 1u);
	EXPECT_EQ(parking.counters(1).parkedNs, 3 * kMs);
	EXPECT_EQ(parking.counters(0).kicks, 1u);
}

TEST(VcpuParking, TheTimeoutEndsTheParkAtItsDeadlineAndNotBefore)
{
	VcpuParking parking(3);
	parking.wait(0, true, 2 * kMs, kT0);
	parking.wait(2, true, 4 * kMs, kT0);

	EXPECT_EQ(parking.timeout(kT0 + 2 * kMs - 1), 0u);
	EXPECT_EQ(parking.timeout(kT0 + 2 * kMs), 1u);

	EXPECT_FALSE(parking.parked(0));
	EXPECT_EQ(parking.lastWake(0), WakeReason::Timeout);
	EXPECT_TRUE(parking.parked(2));
	EXPECT_EQ(parking.nextDeadlineNs(), kT0 + 4 * kMs);
	EXPECT_EQ(parking.counters(0).waitTimeouts, 1u);
	EXPECT_EQ(parking.totals().parkedNs, 2 * kMs);
}

TEST(VcpuParking, TheHostCapsEveryTimeout)
{
	VcpuParking parking(2, ParkingLimits{ 10 * kMs, 64, 5000 });

	WaitDecision zero = parking.wait(0, true, 0, kT0);
	WaitDecision huge = parking.wait(1, true, UINT64_MAX, UINT64_MAX - 1);

	EXPECT_EQ(zero.untilNs, kT0 + 10 * kMs);
	EXPECT_EQ(huge.untilNs, UINT64_MAX) << "the deadline saturates instead of wrapping";
}

TEST(VcpuParking, StoppingWakesParkedVcpusAndNoneParksAgain)
{
	VcpuParking parking(3);
	parking.wait(0, true, 0, kT0);
	parking.wait(1, true, 0, kT0);
	parking.kick(0, 2, kT0); // pending for vCPU 2

	parking.stopAll(kT0 + kMs);

	EXPECT_FALSE(parking.parked(0));
	EXPECT_FALSE(parking.parked(1));
	EXPECT_EQ(parking.lastWake(0), WakeReason::Stopped);
	EXPECT_EQ(parking.totals().wakesByStop, 2u);
	WaitDecision after = parking.wait(2, true, 0, kT0 + 2 * kMs);
	EXPECT_FALSE(after.park);
	EXPECT_EQ(after.reason, WakeReason::Stopped);
	EXPECT_EQ(parking.kick(0, 1, kT0 + 2 * kMs), KickResult::DroppedStopped);
	EXPECT_EQ(parking.nextDeadlineNs(), UINT64_MAX);
}

TEST(VcpuParking, AFloodOfKicksIsBoundedByThePendingFlagAndTheRateLimit)
{
	ParkingLimits limits{ SPINDLE_PV_WAIT_MAX_NS, 8, 10'000 };
	VcpuParking parking(2, limits);
	unsigned woken = 0, pending = 0, coalesced = 0, limited = 0;

	// 10000 kicks in 1 ms from vCPU 0 at a vCPU that waits again as soon as it wakes.
	for (uint64_t i = 0; i < 10'000; ++i) {
		uint64_t now = kT0 + i * 100;
		if (!parking.parked(1))
			parking.wait(1, true, 0, now);
		switch (parking.kick(0, 1, now)) {
		case KickResult::Woken: woken++; break;
		case KickResult::Pending: pending++; break;
		case KickResult::Coalesced: coalesced++; break;
		case KickResult::DroppedRateLimited: limited++; break;
		default: ADD_FAILURE(); break;
		}
	}

	// Burst 8 plus one per 10 us over 1 ms: at most 8 + 100 kicks got through.
	EXPECT_LE(woken + pending + coalesced, 8u + 100u);
	EXPECT_GE(limited, 10'000u - 108u);
	const ParkingCounters &sender = parking.counters(0);
	EXPECT_EQ(sender.kicks, 10'000u);
	EXPECT_EQ(sender.kicksDropped, limited);
	EXPECT_EQ(parking.totals().allKicksDropped(), limited + coalesced);
}

TEST(VcpuParking, KicksToAVcpuThatDoesNotWaitCoalesceIntoOne)
{
	VcpuParking parking(2);

	EXPECT_EQ(parking.kick(0, 1, kT0), KickResult::Pending);
	EXPECT_EQ(parking.kick(0, 1, kT0), KickResult::Coalesced);
	EXPECT_EQ(parking.kick(0, 1, kT0), KickResult::Coalesced);

	EXPECT_EQ(parking.counters(1).kicksCoalesced, 2u);
	EXPECT_FALSE(parking.wait(1, true, 0, kT0).park);
	EXPECT_TRUE(parking.wait(1, true, 0, kT0).park);
}

TEST(VcpuParking, AKickToAVcpuOutOfRangeIsCountedAndDropped)
{
	VcpuParking parking(2);

	EXPECT_EQ(parking.kick(0, 2, kT0), KickResult::DroppedOutOfRange);
	EXPECT_EQ(parking.kick(0, UINT32_MAX, kT0), KickResult::DroppedOutOfRange);
	EXPECT_EQ(parking.kick(7, 0, kT0), KickResult::DroppedOutOfRange);

	EXPECT_EQ(parking.counters(0).kicks, 2u);
	EXPECT_EQ(parking.counters(0).kicksDropped, 2u);
	EXPECT_TRUE(parking.wait(0, true, 0, kT0).park) << "a dropped kick leaves nothing pending";
	EXPECT_EQ(parking.wait(5, true, 0, kT0).reason, WakeReason::OutOfRange);
}

TEST(VcpuParking, AWaitWhileParkedIsRefused)
{
	VcpuParking parking(1);
	parking.wait(0, true, 0, kT0);

	WaitDecision again = parking.wait(0, true, 0, kT0);

	EXPECT_FALSE(again.park);
	EXPECT_EQ(again.reason, WakeReason::AlreadyParked);
	EXPECT_EQ(parking.deadlineNs(0), kT0 + SPINDLE_PV_WAIT_MAX_NS) << "the first park is untouched";
}

TEST(VcpuParking, AWaitWithABadAddressNeverReachesIt)
{
	// The decoder is the gate: a WAIT on a word outside RAM is malformed, so the host has no
	// PvWait to park with, and the guest's WAIT returns at once.
	spindle_pv_wait record{};
	record.header = { SPINDLE_PV_MAGIC, SPINDLE_PV_WAIT, sizeof(record) };
	record.word_gpa = 64ull << 20;
	std::array<uint8_t, SPINDLE_MAILBOX_SIZE> mailbox{};
	std::memcpy(mailbox.data(), &record, sizeof(record));

	auto decoded = decodePvRecord(mailbox, sizeof(record), PvLimits{ 2, 64ull << 20 });

	EXPECT_FALSE(decoded);
}

// ---- ParkingLot: real threads -----------------------------------------------------------------

namespace {

constexpr uint64_t kLongNs = 5'000'000'000; // longer than any test should take

// Waits (bounded) until vCPU `vcpu` is parked in `lot`.
bool waitUntilParked(const ParkingLot &lot, unsigned vcpu)
{
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (!lot.parked(vcpu)) {
		if (std::chrono::steady_clock::now() > deadline)
			return false;
		std::this_thread::sleep_for(std::chrono::microseconds(100));
	}
	return true;
}

} // namespace

TEST(ParkingLot, AKickWakesABlockedThread)
{
	ParkingLot lot(2, ParkingLimits{ kLongNs, 64, 5000 });
	std::atomic<int> reason{ -1 };

	std::thread waiter([&] { reason = static_cast<int>(lot.parkUntilWoken(1, true, 0)); });
	ASSERT_TRUE(waitUntilParked(lot, 1));
	EXPECT_EQ(lot.kick(0, 1), KickResult::Woken);
	waiter.join();

	EXPECT_EQ(reason, static_cast<int>(WakeReason::Kick));
	EXPECT_GT(lot.counters(1).parkedNs, 0u);
}

TEST(ParkingLot, ATimeoutEndsTheBlockWithoutAKick)
{
	ParkingLot lot(1);
	auto start = std::chrono::steady_clock::now();

	WakeReason reason = lot.parkUntilWoken(0, true, 2'000'000);

	auto waited = std::chrono::steady_clock::now() - start;
	EXPECT_EQ(reason, WakeReason::Timeout);
	EXPECT_GE(waited, std::chrono::milliseconds(2));
	EXPECT_EQ(lot.counters(0).waitTimeouts, 1u);
}

TEST(ParkingLot, StopAllReleasesEveryBlockedThread)
{
	ParkingLot lot(4, ParkingLimits{ kLongNs, 64, 5000 });
	std::vector<std::thread> threads;
	std::atomic<unsigned> stopped{ 0 };
	for (unsigned vcpu = 0; vcpu < 4; ++vcpu)
		threads.emplace_back([&, vcpu] {
			if (lot.parkUntilWoken(vcpu, true, 0) == WakeReason::Stopped)
				stopped++;
		});
	for (unsigned vcpu = 0; vcpu < 4; ++vcpu)
		ASSERT_TRUE(waitUntilParked(lot, vcpu));

	lot.stopAll();
	for (std::thread &t : threads)
		t.join();

	EXPECT_EQ(stopped, 4u);
	EXPECT_EQ(lot.parkUntilWoken(0, true, 0), WakeReason::Stopped);
}

TEST(ParkingLot, PingPongLosesNoWakeUp)
{
	// Two threads hand a token back and forth by WAIT and KICK, each re-checking the token as
	// a guest would. A lost wake-up would show as a timeout (the cap is long); a kick that
	// races ahead of its wait is kept pending.
	ParkingLot lot(2, ParkingLimits{ kLongNs, 1'000'000, 1 });
	std::atomic<uint32_t> turn{ 0 };
	constexpr uint32_t kRounds = 2000;
	std::atomic<uint64_t> timeouts{ 0 };

	auto player = [&](unsigned me) {
		for (uint32_t round = me; round < kRounds; round += 2) {
			while (turn.load() != round) {
				uint32_t seen = turn.load();
				if (seen == round)
					break;
				if (lot.parkUntilWoken(me, turn.load() == seen, 0) == WakeReason::Timeout)
					timeouts++;
			}
			turn.store(round + 1);
			lot.kick(me, 1 - me);
		}
	};
	std::thread a(player, 0), b(player, 1);
	a.join();
	b.join();

	EXPECT_EQ(turn.load(), kRounds);
	EXPECT_EQ(timeouts.load(), 0u);
	EXPECT_EQ(lot.totals().kicks, kRounds);
}

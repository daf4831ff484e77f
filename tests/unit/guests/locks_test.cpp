// The guests' lock headers under real std::thread contention, with a fake platform that records
// pauses, hints and long-spin notifications. Thread i plays vCPU i.

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "guest-kernels/locks/barrier.h"
#include "guest-kernels/locks/mcs.h"
#include "guest-kernels/locks/pvhalt.h"
#include "guest-kernels/locks/tas.h"
#include "guest-kernels/locks/ticket.h"

namespace {

using namespace spindle::locks;

struct Notification {
	uint32_t cpu;
	uint32_t lockId;
	uint32_t waitsOn;
	uint64_t spins;
};

// The platform seen by the locks in these tests. pause() yields, so the tests also finish on a
// machine with fewer cores than threads, and can hold a "vCPU" still (a closed gate) to play a
// preempted vCPU. Its waitOn() returns at once, as a host that does not park does (pvhalt's
// blocking is tested with a platform that blocks, in pvhalt_lock_test.cpp).
struct FakePlatform {
	static inline std::atomic<uint32_t> threshold{ 0 };
	static inline spindle_hint_slot slots[kMaxCpus];
	static inline std::atomic<uint64_t> pauses[kMaxCpus];
	static inline std::atomic<bool> gateOpen[kMaxCpus];
	static inline std::mutex mutex;
	static inline std::vector<Notification> notifications;

	static void reset()
	{
		threshold = 0;
		for (uint32_t cpu = 0; cpu < kMaxCpus; cpu++) {
			slots[cpu] = {};
			slots[cpu].waiting_on = kNoCpu;
			pauses[cpu] = 0;
			gateOpen[cpu] = true;
		}
		std::lock_guard<std::mutex> guard(mutex);
		notifications.clear();
	}

	static void pause(uint32_t cpu)
	{
		pauses[cpu]++;
		while (!gateOpen[cpu])
			std::this_thread::yield();
		std::this_thread::yield();
	}

	static uint32_t spinThreshold() { return threshold; }
	static spindle_hint_slot *hintSlot(uint32_t cpu) { return &slots[cpu]; }

	static void notifyLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins)
	{
		std::lock_guard<std::mutex> guard(mutex);
		notifications.push_back({ cpu, lockId, waitsOn, spins });
	}

	static void waitOn(uint32_t, const volatile uint32_t *, uint32_t, uint64_t) { std::this_thread::yield(); }
	static void kick(uint32_t, uint32_t) {}

	static std::vector<Notification> recorded()
	{
		std::lock_guard<std::mutex> guard(mutex);
		return notifications;
	}

	// Waits (bounded) until `cpu` has paused at least `count` times, i.e. is stuck waiting.
	static bool waitForPauses(uint32_t cpu, uint64_t count)
	{
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (pauses[cpu] < count) {
			if (std::chrono::steady_clock::now() > deadline)
				return false;
			std::this_thread::yield();
		}
		return true;
	}

	static bool waitForNotifications(size_t count)
	{
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (recorded().size() < count) {
			if (std::chrono::steady_clock::now() > deadline)
				return false;
			std::this_thread::yield();
		}
		return true;
	}
};

using P = FakePlatform;
constexpr uint32_t kLockId = 7;

// The locks are large (MCS nodes for 256 vCPUs), so tests keep them off the stack.
template<typename Lock>
std::unique_ptr<Lock> makeLock()
{
	return std::make_unique<Lock>(kLockId);
}

class LockTestBase : public ::testing::Test
{
protected:
	void SetUp() override { P::reset(); }
};

// `holder` takes the lock; a thread playing `waiter` then contends for it until it has paused
// `pauses` times; then the holder releases and the waiter takes and releases the lock in turn.
// Returns what the waiter's acquire() returned.
template<typename Lock>
uint64_t contendOnce(Lock &lock, uint32_t holder, uint32_t waiter, uint64_t pauses)
{
	std::atomic<uint64_t> spins{ 0 };
	lock.acquire(holder);
	std::thread thread([&] {
		spins = lock.acquire(waiter);
		lock.release(waiter);
	});
	bool waited = P::waitForPauses(waiter, pauses);
	lock.release(holder);
	thread.join();
	EXPECT_TRUE(waited) << "the waiter never spun " << pauses << " times";
	return spins;
}

// ---- Properties every lock must have ---------------------------------------------------------

template<typename Lock>
class AnyLockTest : public LockTestBase
{
};

using AllLocks = ::testing::Types<TicketLock<P>, PvTicketLock<P>, TasLock<P>, TtasLock<P>, McsLock<P>,
				  QspinLock<P>, PvHaltLock<P>>;
TYPED_TEST_SUITE(AnyLockTest, AllLocks);

TYPED_TEST(AnyLockTest, ContendingThreadsNeverLoseAnUpdate)
{
	constexpr uint32_t kThreads = 4;
	constexpr uint64_t kIterations = 5000;
	auto lock = makeLock<TypeParam>();
	uint64_t counter = 0; // deliberately not atomic: the lock is what protects it

	std::vector<std::thread> threads;
	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		threads.emplace_back([&, cpu] {
			for (uint64_t i = 0; i < kIterations; i++) {
				lock->acquire(cpu);
				uint64_t seen = counter;
				// Widen the window in which a second holder would interleave.
				if (i % 64 == 0)
					std::this_thread::yield();
				counter = seen + 1;
				lock->release(cpu);
			}
		});
	}
	for (std::thread &thread : threads)
		thread.join();

	EXPECT_EQ(counter, kThreads * kIterations);
}

TYPED_TEST(AnyLockTest, WaiterGetsTheLockOnlyAfterTheHolderReleasesIt)
{
	auto lock = makeLock<TypeParam>();
	std::atomic<bool> acquired{ false };
	lock->acquire(0);

	std::thread waiter([&] {
		lock->acquire(1);
		acquired = true;
		lock->release(1);
	});
	ASSERT_TRUE(P::waitForPauses(1, 100));
	bool acquiredWhileHeld = acquired;
	lock->release(0);
	waiter.join();

	EXPECT_FALSE(acquiredWhileHeld);
	EXPECT_TRUE(acquired);
}

TYPED_TEST(AnyLockTest, UncontendedAcquireCountsNoSpins)
{
	auto lock = makeLock<TypeParam>();

	uint64_t spins = lock->acquire(0);
	lock->release(0);

	EXPECT_EQ(spins, 0u);
}

TYPED_TEST(AnyLockTest, ContendedAcquireReturnsItsSpinCount)
{
	auto lock = makeLock<TypeParam>();

	uint64_t spins = contendOnce(*lock, 0, 1, 50);

	EXPECT_GE(spins, 50u);
	EXPECT_EQ(spins, P::pauses[1].load());
}

TYPED_TEST(AnyLockTest, EveryThreadMakesProgressUnderContention)
{
	constexpr uint32_t kThreads = 6;
	auto lock = makeLock<TypeParam>();
	std::atomic<bool> stop{ false };
	std::atomic<uint64_t> acquisitions[kThreads] = {};

	std::vector<std::thread> threads;
	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		threads.emplace_back([&, cpu] {
			while (!stop) {
				lock->acquire(cpu);
				acquisitions[cpu]++;
				lock->release(cpu);
			}
		});
	}
	// Every thread must get in while all of them keep competing for the lock.
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	auto allGotIn = [&] {
		for (auto &count : acquisitions) {
			if (count < 100)
				return false;
		}
		return true;
	};
	while (!allGotIn() && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	stop = true;
	for (std::thread &thread : threads)
		thread.join();

	for (uint32_t cpu = 0; cpu < kThreads; cpu++)
		EXPECT_GE(acquisitions[cpu].load(), 100u) << "thread " << cpu;
}

// ---- FIFO locks ------------------------------------------------------------------------------

template<typename Lock>
class FifoLockTest : public LockTestBase
{
};

using FifoLocks = ::testing::Types<TicketLock<P>, PvTicketLock<P>, McsLock<P>, PvHaltLock<P>>;
TYPED_TEST_SUITE(FifoLockTest, FifoLocks);

TYPED_TEST(FifoLockTest, WaitersAcquireInArrivalOrder)
{
	constexpr uint32_t kWaiters = 5;
	auto lock = makeLock<TypeParam>();
	std::mutex orderMutex;
	std::vector<uint32_t> order;
	lock->acquire(0);

	// Start waiters one at a time; a waiter that pauses has queued, so arrival order is 1, 2, ...
	std::vector<std::thread> threads;
	for (uint32_t cpu = 1; cpu <= kWaiters; cpu++) {
		threads.emplace_back([&, cpu] {
			lock->acquire(cpu);
			{
				std::lock_guard<std::mutex> guard(orderMutex);
				order.push_back(cpu);
			}
			lock->release(cpu);
		});
		ASSERT_TRUE(P::waitForPauses(cpu, 1));
	}
	lock->release(0);
	for (std::thread &thread : threads)
		thread.join();

	EXPECT_EQ(order, (std::vector<uint32_t>{ 1, 2, 3, 4, 5 }));
}

// ---- qspin -----------------------------------------------------------------------------------

class QspinTest : public LockTestBase
{
};

TEST_F(QspinTest, NewcomerStealsAFreeLockAheadOfAStalledQueueHead)
{
	auto lock = makeLock<QspinLock<P>>();
	lock->acquire(0);
	P::gateOpen[1] = false; // vCPU 1 queues, then is "preempted"
	std::thread head([&] {
		lock->acquire(1);
		lock->release(1);
	});
	ASSERT_TRUE(P::waitForPauses(1, 1));
	lock->release(0);

	uint64_t newcomerSpins = lock->acquire(2);
	lock->release(2);
	P::gateOpen[1] = true;
	head.join();

	EXPECT_EQ(newcomerSpins, 0u);
}

// ---- Enlightenment: pvticket vs the classic ticket lock ----------------------------------------

class PvTicketTest : public LockTestBase
{
};

TEST_F(PvTicketTest, LongSpinNotificationNamesTheHolder)
{
	P::threshold = 10;
	auto lock = makeLock<PvTicketLock<P>>();

	contendOnce(*lock, 3, 5, 40);

	std::vector<Notification> sent = P::recorded();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].cpu, 5u);
	EXPECT_EQ(sent[0].lockId, kLockId);
	EXPECT_EQ(sent[0].waitsOn, 3u);
	EXPECT_EQ(sent[0].spins, 10u);
}

TEST_F(PvTicketTest, LongSpinNotificationNamesThePreemptedNextInLine)
{
	// Lock-waiter preemption: vCPU 0 releases, it is vCPU 1's turn, but vCPU 1 is stalled, so
	// vCPU 2 (behind it) must name vCPU 1, not the former holder.
	P::threshold = 10;
	auto lock = makeLock<PvTicketLock<P>>();
	lock->acquire(0);
	P::gateOpen[1] = false;
	P::gateOpen[2] = false;
	auto acquireRelease = [&](uint32_t cpu) {
		lock->acquire(cpu);
		lock->release(cpu);
	};
	std::thread next(acquireRelease, 1);
	ASSERT_TRUE(P::waitForPauses(1, 1));
	std::thread behind(acquireRelease, 2);
	ASSERT_TRUE(P::waitForPauses(2, 1));

	lock->release(0);
	P::gateOpen[2] = true;
	ASSERT_TRUE(P::waitForNotifications(1));
	P::gateOpen[1] = true;
	next.join();
	behind.join();

	std::vector<Notification> sent = P::recorded();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].cpu, 2u);
	EXPECT_EQ(sent[0].waitsOn, 1u);
}

TEST_F(PvTicketTest, ZeroThresholdSendsNoNotification)
{
	P::threshold = 0;
	auto lock = makeLock<PvTicketLock<P>>();

	contendOnce(*lock, 0, 1, 100);

	EXPECT_TRUE(P::recorded().empty());
}

TEST_F(PvTicketTest, HolderPublishesOneLockHeld)
{
	auto lock = makeLock<PvTicketLock<P>>();
	uint32_t seqBefore = P::slots[4].seq;

	lock->acquire(4);
	spindle_hint_slot whileHeld = P::slots[4];
	lock->release(4);

	EXPECT_EQ(whileHeld.locks_held, 1u);
	EXPECT_GT(whileHeld.seq, seqBefore);
	EXPECT_EQ(P::slots[4].locks_held, 0u);
	EXPECT_GT(P::slots[4].seq, whileHeld.seq);
}

TEST_F(PvTicketTest, WaiterPublishesWhomAndWhichLockItWaitsOn)
{
	auto lock = makeLock<PvTicketLock<P>>();
	lock->acquire(2);
	P::gateOpen[6] = false;

	std::thread waiter([&] {
		lock->acquire(6);
		lock->release(6);
	});
	ASSERT_TRUE(P::waitForPauses(6, 1));
	spindle_hint_slot whileWaiting = P::slots[6];
	P::gateOpen[6] = true;
	lock->release(2);
	waiter.join();

	EXPECT_EQ(whileWaiting.waiting_on, 2u);
	EXPECT_EQ(whileWaiting.waiting_lock, kLockId);
	EXPECT_EQ(P::slots[6].waiting_on, kNoCpu);
}

TEST_F(PvTicketTest, HintsReturnToIdleAfterContention)
{
	constexpr uint32_t kThreads = 4;
	P::threshold = 5;
	auto lock = makeLock<PvTicketLock<P>>();

	std::vector<std::thread> threads;
	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		threads.emplace_back([&, cpu] {
			for (int i = 0; i < 2000; i++) {
				lock->acquire(cpu);
				lock->release(cpu);
			}
		});
	}
	for (std::thread &thread : threads)
		thread.join();

	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		EXPECT_EQ(P::slots[cpu].locks_held, 0u) << "cpu " << cpu;
		EXPECT_EQ(P::slots[cpu].waiting_on, kNoCpu) << "cpu " << cpu;
		// At least one acquire and one release each, two seq bumps apiece.
		EXPECT_GE(P::slots[cpu].seq, 2u * 2000) << "cpu " << cpu;
	}
}

TEST_F(PvTicketTest, ClassicTicketLockWritesNoHintsAndSendsNoNotifications)
{
	P::threshold = 10;
	auto lock = makeLock<TicketLock<P>>();

	contendOnce(*lock, 0, 1, 40);

	EXPECT_TRUE(P::recorded().empty());
	EXPECT_EQ(P::slots[0].seq, 0u);
	EXPECT_EQ(P::slots[1].seq, 0u);
}

// ---- Barrier ---------------------------------------------------------------------------------

class SenseBarrierTest : public LockTestBase
{
};

TEST_F(SenseBarrierTest, NoThreadLeavesARoundBeforeAllHaveArrived)
{
	constexpr uint32_t kThreads = 4;
	constexpr uint32_t kRounds = 200;
	SenseBarrier<P> barrier;
	std::atomic<uint32_t> arrivals[kRounds] = {};
	std::atomic<bool> early{ false };

	std::vector<std::thread> threads;
	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		threads.emplace_back([&, cpu] {
			uint32_t sense = 0;
			for (uint32_t round = 0; round < kRounds; round++) {
				arrivals[round]++;
				barrier.wait(cpu, kThreads, sense);
				if (arrivals[round] != kThreads)
					early = true;
			}
		});
	}
	for (std::thread &thread : threads)
		thread.join();

	EXPECT_FALSE(early);
}

TEST_F(SenseBarrierTest, CompletionRunsOnceAndAloneEachRound)
{
	constexpr uint32_t kThreads = 4;
	constexpr uint32_t kRounds = 200;
	SenseBarrier<P> barrier;
	uint64_t completions = 0; // not atomic: only the last arriver, alone, runs the completion

	std::vector<std::thread> threads;
	for (uint32_t cpu = 0; cpu < kThreads; cpu++) {
		threads.emplace_back([&, cpu] {
			uint32_t sense = 0;
			for (uint32_t round = 0; round < kRounds; round++)
				barrier.wait(cpu, kThreads, sense, [&] { completions++; });
		});
	}
	for (std::thread &thread : threads)
		thread.join();

	EXPECT_EQ(completions, kRounds);
}

} // namespace

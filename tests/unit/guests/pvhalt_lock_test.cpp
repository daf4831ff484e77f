// pvhalt on a host platform whose waitOn() really blocks the thread (a condition variable per
// "vCPU", with the WAIT record's semantics: one pending kick, the word re-checked, a timeout),
// and on hosts that do less: one that loses every kick, one whose waits return at once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "guest-kernels/locks/pvhalt.h"

namespace {

using namespace spindle::locks;
using Clock = std::chrono::steady_clock;

// How the platform's host behaves.
enum class HostKind {
	Parks,       // as Spindle's host: block until a kick or the timeout
	LosesKicks,  // never delivers a kick: every wait ends by its (short) timeout
	ReturnsAtOnce, // does not park at all (today's host, which drops WAIT records)
};

struct BlockingPlatform {
	struct alignas(64) Vcpu {
		std::mutex mutex;
		std::condition_variable wake;
		bool kickPending = false;
		std::atomic<uint64_t> waits{ 0 };
		std::atomic<uint64_t> parks{ 0 };   // waits that blocked
		std::atomic<uint64_t> wokenByKick{ 0 };
		std::atomic<uint64_t> kicksReceived{ 0 };
		std::atomic<bool> parked{ false };
		std::atomic<uint64_t> pauses{ 0 };
		std::atomic<uint64_t> spinsBeforeFirstWait{ 0 };
	};

	static inline HostKind host = HostKind::Parks;
	static inline std::atomic<uint32_t> threshold{ 0 };
	// LosesKicks waits this long instead of the lock's own timeout, to keep the tests short.
	static inline std::chrono::microseconds lostKickTimeout{ 200 };
	static inline std::unique_ptr<Vcpu[]> vcpus;
	static inline spindle_hint_slot slots[kMaxCpus];

	static void reset(HostKind kind, uint32_t spinThreshold)
	{
		host = kind;
		threshold = spinThreshold;
		vcpus = std::make_unique<Vcpu[]>(kMaxCpus);
		for (spindle_hint_slot &slot : slots) {
			slot = {};
			slot.waiting_on = kNoCpu;
		}
	}

	static void pause(uint32_t cpu)
	{
		vcpus[cpu].pauses++;
		std::this_thread::yield();
	}
	static uint32_t spinThreshold() { return threshold; }
	static spindle_hint_slot *hintSlot(uint32_t cpu) { return &slots[cpu]; }

	static void waitOn(uint32_t cpu, const volatile uint32_t *word, uint32_t expected, uint64_t timeoutNs)
	{
		Vcpu &v = vcpus[cpu];
		if (v.waits++ == 0)
			v.spinsBeforeFirstWait = v.pauses.load();
		if (host == HostKind::ReturnsAtOnce)
			return;
		std::unique_lock lock(v.mutex);
		// The host's rules, in its order: a pending kick, then the word, then park.
		if (v.kickPending) {
			v.kickPending = false;
			return;
		}
		if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected)
			return;
		auto timeout = host == HostKind::LosesKicks ? Clock::duration(lostKickTimeout)
							    : Clock::duration(std::chrono::nanoseconds(timeoutNs));
		v.parks++;
		v.parked = true;
		bool kicked = v.wake.wait_for(lock, timeout, [&v] { return v.kickPending; });
		v.parked = false;
		if (kicked) {
			v.kickPending = false;
			v.wokenByKick++;
		}
	}

	static void kick(uint32_t, uint32_t target)
	{
		Vcpu &v = vcpus[target];
		v.kicksReceived++;
		if (host == HostKind::LosesKicks)
			return;
		{
			std::lock_guard lock(v.mutex);
			v.kickPending = true;
		}
		v.wake.notify_one();
	}

	static bool waitUntil(const std::function<bool()> &done)
	{
		auto deadline = Clock::now() + std::chrono::seconds(10);
		while (!done()) {
			if (Clock::now() > deadline)
				return false;
			std::this_thread::sleep_for(std::chrono::microseconds(50));
		}
		return true;
	}
};

using P = BlockingPlatform;
using Lock = PvHaltLock<P>;

// Threads hammer one lock, each guarding a non-atomic counter, until each has done `rounds`;
// returns whether all finished before the deadline (progress) and leaves the counter behind.
struct Hammer {
	uint64_t counter = 0;
	bool finished = false;

	Hammer(Lock &lock, uint32_t threads, uint64_t rounds)
	{
		std::atomic<uint32_t> done{ 0 };
		std::atomic<uint32_t> ready{ 0 };
		std::vector<std::thread> workers;
		for (uint32_t cpu = 0; cpu < threads; cpu++) {
			workers.emplace_back([&, cpu] {
				// All start together, or one could be done before the next one starts.
				ready++;
				while (ready.load() < threads)
					std::this_thread::yield();
				for (uint64_t i = 0; i < rounds; i++) {
					lock.acquire(cpu);
					uint64_t seen = counter;
					// Widen the window in which a second holder would interleave, and give the
					// waiters time to reach their threshold and park.
					if (i % 8 == 0)
						std::this_thread::sleep_for(std::chrono::microseconds(20));
					counter = seen + 1;
					lock.release(cpu);
				}
				done++;
			});
		}
		finished = P::waitUntil([&] { return done.load() == threads; });
		for (std::thread &worker : workers)
			worker.join();
	}
};

uint64_t total(std::atomic<uint64_t> P::Vcpu::*field, uint32_t threads)
{
	uint64_t sum = 0;
	for (uint32_t cpu = 0; cpu < threads; cpu++)
		sum += (P::vcpus[cpu].*field).load();
	return sum;
}

struct Shape {
	HostKind host;
	uint32_t threads;
};

class PvHaltExclusion : public ::testing::TestWithParam<Shape>
{
};

TEST_P(PvHaltExclusion, MutualExclusionAndProgress)
{
	const Shape shape = GetParam();
	P::reset(shape.host, 8); // a short spin, so waiters really wait
	auto lock = std::make_unique<Lock>(3);
	constexpr uint64_t kRounds = 600;

	Hammer hammer(*lock, shape.threads, kRounds);

	EXPECT_TRUE(hammer.finished) << "a waiter never got the lock";
	EXPECT_EQ(hammer.counter, shape.threads * kRounds);
	EXPECT_GT(total(&P::Vcpu::waits, shape.threads), 0u) << "nobody ever waited: the test tests nothing";
	if (shape.host == HostKind::Parks) {
		EXPECT_GT(total(&P::Vcpu::wokenByKick, shape.threads), 0u);
	}
}

INSTANTIATE_TEST_SUITE_P(Hosts, PvHaltExclusion,
			 ::testing::Values(Shape{ HostKind::Parks, 2 }, Shape{ HostKind::Parks, 4 },
					   Shape{ HostKind::LosesKicks, 2 }, Shape{ HostKind::LosesKicks, 4 },
					   Shape{ HostKind::ReturnsAtOnce, 2 }, Shape{ HostKind::ReturnsAtOnce, 4 },
					   Shape{ HostKind::Parks, 16 }));

// `holder` takes the lock; a thread playing `waiter` contends for it until it is parked; then
// `whileParked` runs and the holder releases. Returns whether the waiter got the lock (it must,
// after the release, and only then).
bool contendUntilParked(Lock &lock, uint32_t holder, uint32_t waiter, const std::function<void()> &whileParked = {})
{
	lock.acquire(holder);
	std::atomic<bool> acquired{ false };
	std::thread thread([&] {
		lock.acquire(waiter);
		acquired = true;
		lock.release(waiter);
	});
	bool parked = P::waitUntil([waiter] { return P::vcpus[waiter].parked.load(); });
	EXPECT_TRUE(parked) << "vCPU " << waiter << " never parked";
	EXPECT_FALSE(acquired) << "vCPU " << waiter << " got the lock while vCPU " << holder << " held it";
	if (whileParked)
		whileParked();
	lock.release(holder);
	thread.join();
	return acquired;
}

class PvHaltTest : public ::testing::Test
{
protected:
	void SetUp() override { P::reset(HostKind::Parks, 8); }
};

TEST_F(PvHaltTest, AWaiterParksAndTheReleaserKicksIt)
{
	auto lock = std::make_unique<Lock>(3);

	EXPECT_TRUE(contendUntilParked(*lock, 0, 1));

	EXPECT_EQ(P::vcpus[1].kicksReceived, 1u);
	EXPECT_EQ(P::vcpus[1].wokenByKick, 1u);
}

TEST_F(PvHaltTest, ParkedWaitersAreWokenOneAtATimeInTicketOrder)
{
	constexpr uint32_t kWaiters = 3;
	auto lock = std::make_unique<Lock>(3);
	std::mutex orderMutex;
	std::vector<uint32_t> order;
	lock->acquire(0);

	std::vector<std::thread> threads;
	for (uint32_t cpu = 1; cpu <= kWaiters; cpu++) {
		threads.emplace_back([&, cpu] {
			lock->acquire(cpu);
			{
				std::lock_guard guard(orderMutex);
				order.push_back(cpu);
			}
			lock->release(cpu);
		});
		// Parked means it holds a ticket: arrival order is 1, 2, 3.
		ASSERT_TRUE(P::waitUntil([cpu] { return P::vcpus[cpu].parked.load(); }));
	}
	lock->release(0);
	for (std::thread &thread : threads)
		thread.join();

	EXPECT_EQ(order, (std::vector<uint32_t>{ 1, 2, 3 }));
	for (uint32_t cpu = 1; cpu <= kWaiters; cpu++)
		EXPECT_EQ(P::vcpus[cpu].kicksReceived, 1u) << "vCPU " << cpu << " is kicked once, at its turn";
}

TEST_F(PvHaltTest, AnUncontendedReleaseKicksNobody)
{
	auto lock = std::make_unique<Lock>(3);

	for (int i = 0; i < 100; i++) {
		EXPECT_EQ(lock->acquire(0), 0u);
		lock->release(0);
	}

	EXPECT_EQ(total(&P::Vcpu::kicksReceived, kMaxCpus), 0u);
}

TEST_F(PvHaltTest, AWaiterSpinsTheThresholdBeforeItWaits)
{
	P::threshold = 0; // "no long-spin records": pvhalt still spins its default first
	auto lock = std::make_unique<Lock>(3);

	contendUntilParked(*lock, 0, 1);

	EXPECT_GE(P::vcpus[1].spinsBeforeFirstWait.load(), uint64_t{ Lock::kDefaultThreshold });
}

TEST_F(PvHaltTest, AParkedWaiterPublishesWhomItWaitsOn)
{
	auto lock = std::make_unique<Lock>(3);
	spindle_hint_slot whileParked{}, holder{};

	contendUntilParked(*lock, 2, 5, [&] {
		whileParked = P::slots[5];
		holder = P::slots[2];
	});

	EXPECT_EQ(whileParked.waiting_on, 2u);
	EXPECT_EQ(whileParked.waiting_lock, 3u);
	EXPECT_EQ(holder.locks_held, 1u);
	EXPECT_EQ(P::slots[5].waiting_on, kNoCpu);
	EXPECT_EQ(P::slots[2].locks_held, 0u);
}

TEST_F(PvHaltTest, AStaleKickOnlyCostsASpuriousWakeUp)
{
	// A kick left pending from before (a releaser that read a stale owner) makes the next WAIT
	// return at once; the waiter must re-check and wait again, not take the lock.
	auto lock = std::make_unique<Lock>(3);
	P::kick(0, 1);

	EXPECT_TRUE(contendUntilParked(*lock, 0, 1, [] {
		EXPECT_GE(P::vcpus[1].waits, 2u) << "the first wait returned at once on the stale kick";
	}));
}

} // namespace

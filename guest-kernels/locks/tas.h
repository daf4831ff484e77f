#pragma once

// Test-and-set and test-and-test-and-set locks: no order among waiters at all.

#include "guest-kernels/locks/spin_wait.h"

namespace spindle::locks {

// A lock word holding the holder's cpu + 1 (0 = free), taken with one compare-and-swap, so a
// waiter can tell whom it waits on. Shared by TTAS and qspin.
class HolderWord
{
public:
	bool tryAcquire(uint32_t cpu)
	{
		uint32_t expected = 0;
		return __atomic_compare_exchange_n(&word_, &expected, cpu + 1, false, __ATOMIC_ACQUIRE,
						   __ATOMIC_RELAXED);
	}

	void release() { __atomic_store_n(&word_, 0, __ATOMIC_RELEASE); }

	bool isFree() const { return __atomic_load_n(&word_, __ATOMIC_RELAXED) == 0; }

	// The holder's vCPU (a snapshot), or kNoCpu if free.
	uint32_t holder() const { return __atomic_load_n(&word_, __ATOMIC_RELAXED) - 1; }

private:
	uint32_t word_ = 0;
};

// Every waiter hammers the lock word with an atomic exchange: the simplest lock, and the one
// that generates the most cache-line traffic under contention.
template<typename P>
class TasLock
{
public:
	constexpr explicit TasLock(uint32_t id = 0) : id_(id) {}

	uint64_t acquire(uint32_t cpu)
	{
		if (__atomic_exchange_n(&word_, 1, __ATOMIC_ACQUIRE) == 0)
			return 0;
		SpinWait<P, false> wait(cpu, id_);
		do
			wait.spin(kNoCpu);
		while (__atomic_exchange_n(&word_, 1, __ATOMIC_ACQUIRE) != 0);
		return wait.finish();
	}

	void release(uint32_t) { __atomic_store_n(&word_, 0, __ATOMIC_RELEASE); }

private:
	uint32_t id_;
	uint32_t word_ = 0;
};

// Waiters read the lock word until it looks free and only then try a compare-and-swap; after a
// failed try they back off exponentially (bounded), which spreads out the stampede that follows
// every release.
template<typename P>
class TtasLock
{
public:
	static constexpr uint32_t kMaxBackoff = 1024;

	constexpr explicit TtasLock(uint32_t id = 0) : id_(id) {}

	uint64_t acquire(uint32_t cpu)
	{
		if (word_.tryAcquire(cpu))
			return 0;
		SpinWait<P, false> wait(cpu, id_);
		uint32_t backoff = 1;
		for (;;) {
			if (!word_.isFree()) {
				wait.spin(word_.holder());
				continue;
			}
			if (word_.tryAcquire(cpu))
				break;
			for (uint32_t i = 0; i < backoff; i++)
				wait.spin(kNoCpu);
			if (backoff < kMaxBackoff)
				backoff *= 2;
		}
		return wait.finish();
	}

	void release(uint32_t) { word_.release(); }

private:
	uint32_t id_;
	HolderWord word_;
};

} // namespace spindle::locks

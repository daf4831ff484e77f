#pragma once

// A sense-reversing barrier for a fixed number of parties.

#include "guest-kernels/locks/spin_wait.h"

namespace spindle::locks {

template<typename P>
class SenseBarrier
{
public:
	constexpr SenseBarrier() = default;

	// Waits until `parties` callers (all passing the same number) have arrived. The last one to
	// arrive runs `completion` while all others are still held, then releases them, so whatever
	// the completion decides (e.g. "stop after this round") every party sees the same value.
	// `localSense` is the caller's own flag, starting at 0 and untouched between calls.
	// Returns the spin iterations waited.
	template<typename Completion>
	uint64_t wait(uint32_t cpu, uint32_t parties, uint32_t &localSense, Completion &&completion)
	{
		localSense ^= 1;
		if (__atomic_add_fetch(&count_, 1, __ATOMIC_ACQ_REL) == parties) {
			// Nobody can arrive for the next round before the sense flips below.
			__atomic_store_n(&count_, 0, __ATOMIC_RELAXED);
			completion();
			__atomic_store_n(&sense_, localSense, __ATOMIC_RELEASE);
			return 0;
		}
		uint64_t spins = 0;
		while (__atomic_load_n(&sense_, __ATOMIC_ACQUIRE) != localSense) {
			P::pause(cpu);
			spins++;
		}
		return spins;
	}

	uint64_t wait(uint32_t cpu, uint32_t parties, uint32_t &localSense)
	{
		return wait(cpu, parties, localSense, [] {});
	}

private:
	uint32_t count_ = 0;
	uint32_t sense_ = 0;
};

} // namespace spindle::locks

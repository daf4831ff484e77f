#pragma once

// One unit of lockbench's mode=cpu: pure integer work (an LCG with an xorshift), about a
// microsecond on current CPUs. Header-only and portable, so the host benchmark that compares a
// guest's speed with a host thread's (bench/guest/cpu_ratio.cpp) runs exactly this code too.

#include <stdint.h>

namespace spindle::lockbench {

inline uint64_t workUnit(uint64_t x)
{
	for (int i = 0; i < 1024; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		x ^= x >> 29;
		// Keeps the compiler from folding the loop into a closed form.
		asm volatile("" : "+r"(x));
	}
	return x;
}

} // namespace spindle::lockbench

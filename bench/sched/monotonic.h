#pragma once

// Clocks in nanoseconds for the benchmarks here; CLOCK_MONOTONIC is the one the scheduler uses.

#include <time.h>

#include <cstdint>

namespace spindle::bench {

// Any clock in nanoseconds (CLOCK_THREAD_CPUTIME_ID and the like too).
inline uint64_t clockNs(clockid_t clock)
{
	timespec ts{};
	clock_gettime(clock, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t monotonicNs()
{
	return clockNs(CLOCK_MONOTONIC);
}

} // namespace spindle::bench

#pragma once

// CLOCK_MONOTONIC in nanoseconds, the clock the scheduler itself uses, for the benchmarks here.

#include <time.h>

#include <cstdint>

namespace spindle::bench {

inline uint64_t monotonicNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} // namespace spindle::bench

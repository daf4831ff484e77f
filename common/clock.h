#pragma once

// Time in nanoseconds, the one helper every layer uses. CLOCK_MONOTONIC is the clock the
// scheduler, the session and the benchmarks agree on; other clocks (CLOCK_THREAD_CPUTIME_ID,
// ...) go through clockNs.

#include <time.h>

#include <cstdint>

namespace spindle {

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

} // namespace spindle

#pragma once

// The log2 latency histogram reported in spindle_pv_result_vcpu: bucket i counts latencies in
// [2^i, 2^(i+1)) ns, bucket 0 also takes 0 and 1 ns, and the last bucket takes everything above.

#include <stdint.h>

#include "guest-kernels/abi/spindle_abi.h"

namespace spindle::lockbench {

inline uint32_t latencyBucket(uint64_t ns)
{
	if (ns < 2)
		return 0;
	uint32_t log2 = 63 - static_cast<uint32_t>(__builtin_clzll(ns));
	return log2 < SPINDLE_LATENCY_BUCKETS ? log2 : SPINDLE_LATENCY_BUCKETS - 1;
}

struct LatencyHistogram {
	uint64_t counts[SPINDLE_LATENCY_BUCKETS] = {};

	void record(uint64_t ns) { counts[latencyBucket(ns)]++; }
};

} // namespace spindle::lockbench

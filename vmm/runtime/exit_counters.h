#pragma once

// Per-vCPU exit counters. Written by the vCPU's own thread with relaxed atomics (no logging, no
// locks on the hot path) and read by anyone for metrics.

#include <atomic>
#include <cstdint>
#include <string>

#include "common/json.h"

namespace spindle {

enum class ExitKind : unsigned {
	Io,
	Mmio,
	Hlt,
	Shutdown,
	FailEntry,
	InternalError,
	Interrupted, // EINTR or KVM_EXIT_INTR: a kick
	Unclaimed,   // IO/MMIO that no device claims
	PvRecord,
	PvMalformed,
	Other,
	Count,
};

const char *exitKindName(ExitKind kind);

// A snapshot of one vCPU's counters, for reports.
struct ExitCounts {
	uint64_t runs = 0;
	uint64_t counts[static_cast<unsigned>(ExitKind::Count)] = {};
	uint64_t get(ExitKind kind) const { return counts[static_cast<unsigned>(kind)]; }
};

struct ExitCounters {
	std::atomic<uint64_t> counts[static_cast<unsigned>(ExitKind::Count)]{};
	std::atomic<uint64_t> runs{0}; // KVM_RUN calls

	void add(ExitKind kind) { counts[static_cast<unsigned>(kind)].fetch_add(1, std::memory_order_relaxed); }
	uint64_t get(ExitKind kind) const { return counts[static_cast<unsigned>(kind)].load(std::memory_order_relaxed); }
	ExitCounts snapshot() const;
};

// {"runs":n,"io":n,...}: every kind, in ExitKind order.
void writeJson(JsonWriter &json, const ExitCounts &counts);

} // namespace spindle

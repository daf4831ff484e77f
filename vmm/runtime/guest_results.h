#pragma once

// What a guest reported through the PV device, and the checks Spindle runs on it: mutual
// exclusion (the guest's non-atomic counter equals the sum of acquisitions), progress of every
// vCPU, and completeness. Pure, so the checks are unit-tested on hand-made records.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "spindle_abi.h"

namespace spindle {

struct GuestResults {
	std::vector<std::optional<spindle_pv_result_vcpu>> vcpus; // indexed by vCPU
	std::optional<spindle_pv_result_vm> vm;
	std::vector<std::string> guestErrors; // texts of SPINDLE_PV_ERROR records
	uint64_t longSpins = 0;              // long-spin notifications received
	bool hasAny() const;
};

const char *benchModeName(uint32_t mode);
const char *lockKindName(uint32_t lock);

// Latency percentile from a log2 histogram (upper bound of the bucket holding it), in ns.
uint64_t histogramPercentileNs(const uint64_t (&hist)[SPINDLE_LATENCY_BUCKETS], double percentile);
uint64_t histogramMaxNs(const uint64_t (&hist)[SPINDLE_LATENCY_BUCKETS]);

// OK when the guest sent no benchmark results at all (hello), or when the results are complete
// and consistent; otherwise one line saying what is wrong.
Status checkGuestResults(const GuestResults &results);

// Throughput in operations per second of guest TSC time.
double opsPerSecond(const GuestResults &results);

// One JSON object describing the VM's results (field names documented in guest-kernels/README.md).
void writeJson(JsonWriter &json, const std::string &vmName, const GuestResults &results);
std::string guestResultsJson(const std::string &vmName, const GuestResults &results);
// A readable table (one row per vCPU and a total).
std::string guestResultsTable(const std::string &vmName, const GuestResults &results);

} // namespace spindle

#pragma once

// `spindle bench` command-line options: parsed from argv with one clear error line for anything
// wrong. Pure (the list of policy names comes from the caller), so every flag, every default and
// every bad value is unit-tested.

#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness/matrix.h"
#include "common/result.h"

namespace spindle::bench {

struct BenchOptions {
	MatrixSpec matrix;           // its poolCpus and vcpusPerVm come from --pcpus and --vcpus
	std::vector<int> pcpus;      // the pool every run uses
	std::string outDir = "bench-results";
	uint64_t runTimeoutNs = 0;   // one run's wall-clock limit (session timeout)
	bool quick = false;
	bool help = false;
};

// args: everything after "bench". knownPolicies: the scheduler's policy names.
Result<BenchOptions> parseBenchOptions(const std::vector<std::string> &args,
				       const std::vector<std::string> &knownPolicies);

// Every flag with its default (and its --quick default where that differs).
std::string benchUsage();

} // namespace spindle::bench

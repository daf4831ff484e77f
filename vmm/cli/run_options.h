#pragma once

// `spindle run` options: parsed from argv with one clear error line for anything wrong.
// Pure (no KVM, no files read), so every flag and every bad value is unit-tested. The session's
// part (SessionConfig, VmSpec) is the runtime's; this adds the CLI's own.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "vmm/runtime/session_config.h"

namespace spindle {

// The session's configuration plus what only the CLI uses: the output files, logging, --stats.
struct RunOptions : SessionConfig {
	std::string metricsPath;
	std::string resultsPath;
	std::string logLevel = "info";
	bool stats = false;
	bool help = false;
};

// argv after "run". isSchedFlag tells whether "--name" is a scheduler tuning flag taking a value.
using SchedFlagPredicate = bool (*)(const std::string &name);
Result<RunOptions> parseRunOptions(const std::vector<std::string> &args, SchedFlagPredicate isSchedFlag = nullptr);

// One --vm value: GUEST[,cpus=N][,mem=SIZE][,kernel=PATH][,name=NAME][,args="k=v k=v"].
Result<VmSpec> parseVmSpec(const std::string &text);

// Splits guest arguments given as one string ("lock=ticket cs=500ns") into words.
std::vector<std::string> splitWords(const std::string &text);

std::string runUsage(const std::string &policyHelp, const std::string &boundsHelp);

} // namespace spindle

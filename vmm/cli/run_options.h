#pragma once

// `spindle run` options: parsed from argv with one clear error line for anything wrong.
// Pure (no KVM, no files read), so every flag and every bad value is unit-tested.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "vmm/runtime/guest_mode.h"

namespace spindle {

struct VmSpec {
	std::string guest;                // bundled guest name, or "" when kernelPath is set
	std::string kernelPath;           // --kernel / kernel=
	unsigned cpus = 1;
	uint64_t memBytes = 64ull << 20;
	std::vector<std::string> args;    // guest arguments
	std::string name;                 // defaults to vm<index>
	std::optional<GuestModeChoice> guestMode; // guest-mode=; unset: the run's --guest-mode
};

enum class SerialMode { Stdout, File, Off };

struct RunOptions {
	std::vector<VmSpec> vms;
	std::string policy = "cfs";
	std::vector<int> pcpus;           // empty: no pool, threads float (cfs only)
	SerialMode serial = SerialMode::Stdout;
	std::string serialPath;
	std::string metricsPath;
	std::string resultsPath;
	std::string tracePath;
	uint64_t timeoutMs = 0;           // 0: no limit
	std::string logLevel = "info";
	bool pauseExits = true;           // --ple on|off
	GuestModeChoice guestMode = GuestModeChoice::Auto;
	uint32_t spinThreshold = 2048;
	bool stats = false;
	bool help = false;
	// Scheduler tuning flags, passed through by name to the scheduler's own parser.
	std::vector<std::pair<std::string, std::string>> schedFlags;
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

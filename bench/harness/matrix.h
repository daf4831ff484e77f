#pragma once

// The overcommit benchmark matrix: what to run (policies x overcommit factors x lock types x
// critical-section lengths, each repeated) and the ordered list of runs it expands to. Pure, so
// every parser and the expansion are unit-tested without KVM.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace spindle::bench {

// A scheduling policy as the benchmark runs it: a Spindle policy name plus whether KVM's
// in-kernel PAUSE-loop exiting stays on. "cfs" is stock KVM; "cfs-nople" shows the raw problem.
struct PolicyVariant {
	std::string policy;
	bool pauseExits = true;

	std::string label() const; // "cfs", "cfs-nople"
	bool operator==(const PolicyVariant &other) const = default;
};

struct MatrixSpec {
	std::vector<PolicyVariant> policies;
	std::vector<unsigned> overcommit; // k: k identical lock-bound VMs share the pool
	std::vector<std::string> locks;
	std::vector<uint64_t> csNs;
	uint64_t thinkNs = 2'000;
	uint64_t durationNs = 1'000'000'000;
	unsigned repeats = 3;
	bool fairness = true; // one more run per cell with a cpu-bound co-runner VM
};

enum class RunKind {
	Alone,    // one lock VM, cfs: the denominator of efficiency for its lock, cs and PLE setting
	CpuAlone, // one cpu-bound VM, cfs, PLE on: the denominator of fairness
	Cell,     // k lock VMs under a policy
	Fairness, // k lock VMs plus one cpu-bound VM under a policy
};

std::string_view runKindName(RunKind kind);

struct RunPlan {
	RunKind kind = RunKind::Cell;
	PolicyVariant policy;
	unsigned overcommit = 1; // lock VMs in the run
	std::string lock;        // empty for CpuAlone
	uint64_t csNs = 0;
	unsigned repeat = 0; // 0-based
};

// Lists as given on the command line, comma-separated. Each rejects empty lists, empty items,
// duplicates and unknown names, naming the bad item.
Result<std::vector<PolicyVariant>> parsePolicyList(std::string_view text, const std::vector<std::string> &knownPolicies);
Result<std::vector<unsigned>> parseOvercommitList(std::string_view text);
Result<std::vector<std::string>> parseLockList(std::string_view text);
Result<std::vector<uint64_t>> parseCsList(std::string_view text);

const std::vector<std::string> &knownLocks();

// Checks the relations a valid matrix needs (non-empty lists, repeats >= 1, duration > 0).
Status validateMatrix(const MatrixSpec &spec);

// The runs in the order they execute. Repetitions are the outer loop, so an interrupted matrix
// has every cell measured about equally often; inside one repetition each lock and cs group
// starts with its Alone runs (cfs, once per PLE setting among the policies), so every efficiency
// has its denominator measured before it.
std::vector<RunPlan> expandMatrix(const MatrixSpec &spec);

// "500ns", "2us", "1.5ms": the shortest exact spelling, for labels and file names.
std::string formatDuration(uint64_t ns);

} // namespace spindle::bench

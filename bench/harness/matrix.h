#pragma once

// The overcommit benchmark matrix: what to run (scenarios x policies x overcommit factors x lock
// types x critical-section lengths, each repeated) and the ordered list of runs it expands to,
// every run with its VMs. Pure, so every parser and the expansion are unit-tested without KVM.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/harness/scenarios.h"
#include "common/result.h"

namespace spindle::bench {

// A scheduling policy as the benchmark runs it: a Spindle policy name, whether KVM's in-kernel
// PAUSE-loop exiting stays on, and whether boosts are SCHED_DEADLINE budgets (--boost-class
// deadline) instead of SCHED_FIFO. "cfs" is stock KVM; "cfs-nople" shows the raw problem;
// "coboost-dl" is coboost with deadline boosts.
struct PolicyVariant {
	std::string policy;
	bool pauseExits = true;
	bool deadlineBoosts = false;

	std::string label() const; // "cfs", "cfs-nople", "coboost-dl", "coboost-dl-nople"
	bool operator==(const PolicyVariant &other) const = default;
};

struct MatrixSpec {
	std::vector<std::string> scenarios = { "homogeneous" }; // knownScenarios() names
	std::vector<PolicyVariant> policies;
	std::vector<unsigned> overcommit; // k: how each scenario scales (homogeneous: k VMs)
	std::vector<std::string> locks;
	std::vector<uint64_t> csNs;
	uint64_t thinkNs = 2'000;
	uint64_t durationNs = 1'000'000'000;
	unsigned repeats = 3;
	bool fairness = true; // one more run per cell with a cpu-bound co-runner VM
	unsigned poolCpus = 2;   // the pool's CPU count (for the fair shares)
	unsigned vcpusPerVm = 2; // a full VM's vCPUs (--vcpus, by default poolCpus)
};

enum class RunKind {
	Alone,    // one VM of a template, cfs: the denominator of efficiency for every VM like it
	CpuAlone, // one cpu-bound VM, cfs, PLE on: the denominator of fairness (and of cpu VMs)
	Cell,     // a scenario's VMs at factor k under a policy
	Fairness, // the same VMs plus one cpu-bound co-runner under a policy
};

std::string_view runKindName(RunKind kind);

struct RunPlan {
	RunKind kind = RunKind::Cell;
	PolicyVariant policy;
	unsigned overcommit = 1; // k (1 for Alone, 0 for CpuAlone)
	std::string lock;        // the lock of the scenario's lock VMs; empty for a VM without one alone
	uint64_t csNs = 0;
	unsigned repeat = 0; // 0-based
	std::string scenario = "homogeneous";
	std::vector<VmTemplate> vms;         // the scenario's VMs (the one VM of an alone run)
	std::optional<VmTemplate> coRunner;  // Fairness runs: the cpu-bound VM created after vms
	unsigned poolCpus = 2;
};

// Lists as given on the command line, comma-separated. Each rejects empty lists, empty items,
// duplicates and unknown names, naming the bad item.
Result<std::vector<PolicyVariant>> parsePolicyList(std::string_view text, const std::vector<std::string> &knownPolicies);
Result<std::vector<unsigned>> parseOvercommitList(std::string_view text);
Result<std::vector<std::string>> parseLockList(std::string_view text);
Result<std::vector<uint64_t>> parseCsList(std::string_view text);
// Scenario names (knownScenarios()), or "all" alone for every one in order.
Result<std::vector<std::string>> parseScenarioList(std::string_view text);

const std::vector<std::string> &knownLocks();

// Checks the relations a valid matrix needs (non-empty lists, repeats >= 1, duration > 0).
Status validateMatrix(const MatrixSpec &spec);

// The runs in the order they execute. Repetitions are the outer loop, so an interrupted matrix
// has every cell measured about equally often; inside one repetition come the scenarios in
// turn, and each scenario's lock and cs groups start with the Alone runs of the templates they
// use that this scenario has not measured yet in this repetition (cfs, once per PLE setting among
// the policies; cpu VMs only with PLE on, as they never PAUSE), so every efficiency has its
// denominator measured before it, close to it in time. With fairness on, each scenario's
// repetition starts with the co-runner alone (CpuAlone).
std::vector<RunPlan> expandMatrix(const MatrixSpec &spec);

// "500ns", "2us", "1.5ms": the shortest exact spelling, for labels and file names.
std::string formatDuration(uint64_t ns);

} // namespace spindle::bench

#pragma once

// Scenarios: the named VM mixes a benchmark cell runs. A scenario turns an overcommit factor k
// and the matrix's lock and critical section into the list of VMs of one run, each a template
// (role, vCPUs, the complete lockbench arguments). Templates are values: two VMs with equal
// templates are the same workload, which is what lets one alone run per distinct template be
// the denominator of every VM like it. Pure, so every mix is unit-tested without KVM.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>


namespace spindle::bench {

enum class VmRole { Lock, Barrier, Cpu };

std::string_view vmRoleName(VmRole role);

struct VmTemplate {
	VmRole role = VmRole::Lock;
	unsigned vcpus = 1;
	std::vector<std::string> args; // the guest's arguments, complete ("mode=lock", "lock=ticket", ...)
	// The fraction of the time each vCPU wants a CPU: busy / (busy + idle) for a sleepy guest,
	// 1 otherwise (spinning waiters and barrier waiters stay runnable). Feeds the fair share.
	double duty = 1.0;

	// "lock/2": the role and the vCPU count, for tables and file columns.
	std::string label() const;
	bool operator==(const VmTemplate &other) const = default;
};

// What a scenario needs from the matrix to build its VMs.
struct ScenarioParams {
	std::string lock;   // the matrix's lock (a scenario may override it: scenarioLocks)
	uint64_t csNs = 0;
	uint64_t thinkNs = 0;
	uint64_t durationNs = 0;
	unsigned vcpus = 1; // the size of a "full" VM: --vcpus, by default the pool's CPU count
};

// The documentation of a scenario, for `spindle bench --help` (and kept in step with
// BENCHMARKS.md's "Scenarios" section).
struct ScenarioInfo {
	std::string_view name;
	std::string_view mix;     // the VMs at factor k
	std::string_view purpose; // why it exists: which policy it should favour, and why
};

// Every scenario, in the order `--scenarios all` runs them.
const std::vector<ScenarioInfo> &knownScenarios();

// The locks a scenario's lock VMs run, given the matrix's: the matrix's, except for a scenario
// that fixes its lock (pvhalt), which runs that one lock once instead of once per matrix lock.
std::vector<std::string> scenarioLocks(std::string_view scenario, const std::vector<std::string> &matrixLocks);

// The VMs of one run of a scenario at factor k, in the order they are created (and placed:
// the scheduler pins vCPUs round-robin over the pool in that order). Empty for an unknown name.
std::vector<VmTemplate> scenarioVms(std::string_view scenario, unsigned k, const ScenarioParams &params);

// The cpu-bound co-runner of the fairness runs (also the cpu VM of lock+barrier+cpu).
VmTemplate cpuVmTemplate(unsigned vcpus, uint64_t durationNs);

// The sleepy scenario's phases (lockbench idle= and busy=); see BENCHMARKS.md for why these.
inline constexpr uint64_t kSleepyIdleNs = 2'000'000;
inline constexpr uint64_t kSleepyBusyNs = 2'000'000;

} // namespace spindle::bench

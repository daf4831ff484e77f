#include "bench/harness/scenarios.h"

#include <algorithm>

#include "bench/harness/matrix.h"

namespace spindle::bench {

namespace {

// The text below is what `spindle bench --help` prints; BENCHMARKS.md ("Scenarios") says the
// same at more length. N is the full VM size (--vcpus, by default the pool's CPU count).
const std::vector<ScenarioInfo> kScenarios = {
	{ "homogeneous",
	  "k lock VMs of N vCPUs (k x overcommitted): today's matrix",
	  "identical, always-busy VMs: gang scheduling is optimal by construction\n"
	  "(a VM's turn has no holes and no lock holder off a CPU); the bar to reach" },
	{ "sleepy",
	  "k lock VMs of N vCPUs, each vCPU alternating busy=2ms of lock work with\n"
	  "idle=2ms blocked in a PV WAIT (duty 1/2: about half its vCPUs runnable)",
	  "idle holes: a 4 ms phase is shorter than a gang turn (10 ms), so a\n"
	  "VM's turn has holes (gang and adaptive let the waiting VMs' SCHED_IDLE\n"
	  "threads fill them); wall-clock phases cap every policy near 0.81" },
	{ "mixed-sizes",
	  "lock VMs of N and of 1 vCPU alternating, N first, k x N vCPUs in all;\n"
	  "1-vCPU VMs fill the end where an N-vCPU VM does not fit (N=2: k=2 is\n"
	  "2+1+1, k=3 2+1+2+1, k=4 2+1+2+1+2)",
	  "a 1-vCPU VM cannot fill the pool: its gang turns are holes, and it has\n"
	  "nothing to spin on; favours co-scheduling only where spinning happens" },
	{ "lock+barrier+cpu",
	  "k trios, interleaved: a lock VM, a barrier VM (mode=barrier) and a cpu VM\n"
	  "(mode=cpu), N vCPUs each: 3k VMs, so k=1 is already 3 x overcommitted",
	  "one VM per need: barrier rounds want all vCPUs at once (gang's best\n"
	  "case), the lock VM its lock holder run, the cpu VM only its share (its\n"
	  "efficiency is its fairness); a policy must help the first two, not rob it" },
	{ "pvhalt",
	  "homogeneous with lock=pvhalt, whatever --locks says (once per cs)",
	  "the upstream Linux PV spinlock (spin, then WAIT until kicked): the\n"
	  "baseline to beat; its waiters leave the CPU themselves, so cfs gets much\n"
	  "of what spin handling gives, and the gaps between policies should narrow" },
};

VmTemplate lockVmTemplate(const ScenarioParams &p, const std::string &lock, unsigned vcpus)
{
	return { VmRole::Lock, vcpus,
		 { "mode=lock", "lock=" + lock, "cs=" + formatDuration(p.csNs), "think=" + formatDuration(p.thinkNs),
		   "duration=" + formatDuration(p.durationNs) },
		 1.0 };
}

VmTemplate sleepyVmTemplate(const ScenarioParams &p)
{
	VmTemplate vm = lockVmTemplate(p, p.lock, p.vcpus);
	vm.args.push_back("idle=" + formatDuration(kSleepyIdleNs));
	vm.args.push_back("busy=" + formatDuration(kSleepyBusyNs));
	vm.duty = static_cast<double>(kSleepyBusyNs) / static_cast<double>(kSleepyBusyNs + kSleepyIdleNs);
	return vm;
}

VmTemplate barrierVmTemplate(const ScenarioParams &p)
{
	// A barrier waiter spins, so it stays runnable: duty 1. Lock and cs do not apply.
	return { VmRole::Barrier, p.vcpus,
		 { "mode=barrier", "think=" + formatDuration(p.thinkNs), "duration=" + formatDuration(p.durationNs) },
		 1.0 };
}

// N-vCPU and 1-vCPU VMs alternating until k x N vCPUs: the same vCPU count as homogeneous at
// the same k, so the two scenarios differ only in how the vCPUs are grouped into VMs.
std::vector<VmTemplate> mixedSizes(unsigned k, const ScenarioParams &p)
{
	std::vector<VmTemplate> vms;
	unsigned left = k * p.vcpus;
	bool big = true;
	while (left > 0) {
		const unsigned size = big && p.vcpus <= left ? p.vcpus : 1;
		vms.push_back(lockVmTemplate(p, p.lock, size));
		left -= size;
		big = !big;
	}
	return vms;
}

} // namespace

std::string_view vmRoleName(VmRole role)
{
	switch (role) {
	case VmRole::Lock: return "lock";
	case VmRole::Barrier: return "barrier";
	case VmRole::Cpu: return "cpu";
	}
	return "?";
}

std::string VmTemplate::label() const
{
	return std::string(vmRoleName(role)) + "/" + std::to_string(vcpus);
}

const std::vector<ScenarioInfo> &knownScenarios()
{
	return kScenarios;
}

std::vector<std::string> scenarioLocks(std::string_view scenario, const std::vector<std::string> &matrixLocks)
{
	if (scenario == "pvhalt")
		return { "pvhalt" };
	return matrixLocks;
}

std::vector<VmTemplate> scenarioVms(std::string_view scenario, unsigned k, const ScenarioParams &params)
{
	std::vector<VmTemplate> vms;
	if (scenario == "homogeneous" || scenario == "pvhalt") {
		const std::string lock = scenario == "pvhalt" ? "pvhalt" : params.lock;
		vms.assign(k, lockVmTemplate(params, lock, params.vcpus));
	} else if (scenario == "sleepy") {
		vms.assign(k, sleepyVmTemplate(params));
	} else if (scenario == "mixed-sizes") {
		vms = mixedSizes(k, params);
	} else if (scenario == "lock+barrier+cpu") {
		for (unsigned i = 0; i < k; ++i) {
			vms.push_back(lockVmTemplate(params, params.lock, params.vcpus));
			vms.push_back(barrierVmTemplate(params));
			vms.push_back(cpuVmTemplate(params.vcpus, params.durationNs));
		}
	}
	return vms;
}

VmTemplate cpuVmTemplate(unsigned vcpus, uint64_t durationNs)
{
	return { VmRole::Cpu, vcpus, { "mode=cpu", "duration=" + formatDuration(durationNs) }, 1.0 };
}

} // namespace spindle::bench

#pragma once

// Running `spindle run` with several lockbench VMs under a policy and reading back its results
// and metrics: shared by the scheduler and PLE KVM suites.

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/files.h"
#include "tests/support/run_command.h"

namespace spindle::test {

inline uint64_t sumAfter(const std::string &json, const std::string &needle)
{
	uint64_t sum = 0;
	for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1))
		sum += std::strtoull(json.c_str() + pos + needle.size(), nullptr, 10);
	return sum;
}

// Sum of a field over the scheduler's per-VM totals.
inline uint64_t totalOf(const std::string &json, const std::string &key)
{
	uint64_t sum = 0;
	const std::string needle = "\"totals\":{";
	for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1)) {
		const std::string totals = json.substr(pos, json.find('}', pos) - pos);
		sum += sumAfter(totals, "\"" + key + "\":");
	}
	return sum;
}

struct PolicyRun {
	CommandResult command;
	std::string results;
	std::string metrics;
};

// Runs `spindle run` with the given VM specs on the pool and reads back its results and metrics.
inline PolicyRun runVms(const std::string &policy, const std::string &pool, const std::vector<std::string> &vms,
		 const std::vector<std::string> &extra)
{
	const std::string base = "/tmp/spindle-sched-" + std::to_string(getpid()) + "-" + policy;
	std::vector<std::string> args = {spindleBinary(), "run", "--pcpus", pool, "--policy", policy, "--spin-threshold", "16",
					 "--results", base + "-results.json", "--metrics", base + "-metrics.json"};
	for (const std::string &vm : vms) {
		args.push_back("--vm");
		args.push_back(vm);
	}
	args.insert(args.end(), extra.begin(), extra.end());
	PolicyRun run{runCommand(args, 180), {}, {}};
	run.results = readFile(base + "-results.json");
	run.metrics = readFile(base + "-metrics.json");
	unlink((base + "-results.json").c_str());
	unlink((base + "-metrics.json").c_str());
	return run;
}

inline const std::string kPvticketVm2 = "lockbench,cpus=2,args=\"lock=pvticket duration=2s\"";

// Two VMs of two vCPUs on host CPU 0 (4x overcommit; gang on CPUs 0-1, since a VM must fit
// the pool to be gang-scheduled). pvticket so all detectors have input. Two seconds of guest
// time: the guest fails a run in which a vCPU made no progress, and an emulated host under load
// can stall a vCPU for a long while.
inline PolicyRun runPolicy(const std::string &policy, std::vector<std::string> extra = {})
{
	return runVms(policy, policy == "gang" ? "0-1" : "0", {kPvticketVm2, kPvticketVm2}, extra);
}

// The scheduler's metrics of the VM with this name ("vm0", "vm1", ...), up to the next VM's.
inline std::string vmMetrics(const std::string &metrics, const std::string &name)
{
	const size_t scheduler = metrics.find("\"scheduler\":");
	const size_t at = scheduler == std::string::npos ? scheduler : metrics.find("\"name\":\"" + name + "\"", scheduler);
	if (at == std::string::npos)
		return {};
	const size_t next = metrics.find("\"name\":\"", at + 1);
	return metrics.substr(at, next == std::string::npos ? std::string::npos : next - at);
}

inline void expectCompletedWithMutualExclusion(const PolicyRun &run)
{
	ASSERT_EQ(run.command.status, 0) << run.command.err << run.command.out;
	size_t ok = 0;
	for (size_t pos = run.results.find("\"checks_ok\":true"); pos != std::string::npos;
	     pos = run.results.find("\"checks_ok\":true", pos + 1))
		++ok;
	EXPECT_EQ(ok, 2u) << run.results;
}

} // namespace spindle::test

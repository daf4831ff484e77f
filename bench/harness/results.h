#pragma once

// What one benchmark run measured, the arithmetic that turns runs into efficiency and fairness,
// the per-cell medians, and the writers (CSV, JSON, Markdown, plot data). Pure: strings in,
// strings out, so every number and every file format is unit-tested on fixed inputs.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/harness/matrix.h"
#include "common/result.h"

namespace spindle::bench {

// Where the numbers come from; recorded in every output so runs from different hosts are never
// mixed up.
struct HostInfo {
	std::string kind;     // "kvm", "emulated" (tests/kvm-host), "kvm-in-qemu" (a QEMU guest with KVM)
	std::string cpuModel; // /proc/cpuinfo "model name"
	std::string kernel;   // uname release
	unsigned cores = 0;   // online CPUs
	std::string version;  // spindle version (git describe, or the project version)
	std::string date;     // ISO 8601 UTC, when the matrix started
	std::string command;  // the full command line
};

// The first "model name" of /proc/cpuinfo, or "" when there is none.
std::string cpuModelFromCpuinfo(std::string_view cpuinfo);
// emulatedEnv: the value of SPINDLE_EMULATED_HOST ("" when unset); cmdline: /proc/cmdline.
std::string hostKind(std::string_view emulatedEnv, std::string_view cmdline, std::string_view cpuModel);

enum class RunStatus { Ok, Failed, Interrupted };
std::string_view runStatusName(RunStatus status);

struct RunRecord {
	unsigned index = 0; // 1-based position in the matrix
	RunPlan plan;
	RunStatus status = RunStatus::Ok;
	std::string failure;          // why a run failed (VmReport.failure or the session's status)
	double wallSeconds = 0;
	std::vector<double> lockOps;  // ops per second of each lock-bound VM
	std::optional<double> cpuOps; // work units per second of the cpu-bound VM, when there is one
	uint64_t spinWaits = 0;       // spin waits the scheduler detected (all detectors)
	uint64_t boosts = 0;
	uint64_t boostedUs = 0;
	double schedulerCpuMs = 0;    // CPU time of the non-vCPU threads (see BENCHMARKS.md)
	// Filled by deriveRatios() from the Alone / CpuAlone runs of the same matrix.
	std::optional<double> efficiency;
	std::optional<double> fairness;
};

// Median of the values; nullopt for none. Even counts average the two middle values.
std::optional<double> median(std::vector<double> values);

// Efficiency of k VMs that together did sum(lockOps): each VM against its fair part of the alone
// throughput, averaged over the VMs. 1.0 is the physical limit. nullopt without a usable alone
// number or without VMs.
std::optional<double> efficiency(const std::vector<double> &lockOps, double aloneOps);
// The co-runner's rate against its entitled share (1 / vmsInPool of what it does alone).
std::optional<double> fairness(double cpuOps, double cpuAloneOps, unsigned vmsInPool);


// Sets efficiency and fairness of every successful run from the medians of the successful Alone
// runs with the same lock, critical section and PLE setting, and of the CpuAlone runs.
void deriveRatios(std::vector<RunRecord> &records);

struct CellSummary {
	std::string lock;
	uint64_t csNs = 0;
	unsigned overcommit = 0;
	std::string policy; // label; "alone cfs" / "alone cfs-nople" for the baseline rows
	unsigned runs = 0;
	unsigned okRuns = 0;
	std::optional<double> opsPerVm; // median over runs of the mean VM throughput
	std::optional<double> efficiency, efficiencyMin, efficiencyMax;
	std::optional<double> fairness;
	std::optional<double> spinWaits, boosts, boostedMs, schedulerCpuMs; // medians
};

// One summary per (lock, cs, overcommit, policy) of Cell runs, plus one "alone ..." row per lock,
// cs and PLE setting, in the matrix's order. Fairness runs fold into the cell they belong to.
std::vector<CellSummary> summarize(const std::vector<RunRecord> &records);

std::string runsCsv(const std::vector<RunRecord> &records, const HostInfo &host);
std::string runsJson(const std::vector<RunRecord> &records, const std::vector<CellSummary> &cells,
		     const HostInfo &host, bool complete);
std::string summaryMarkdown(const std::vector<CellSummary> &cells, const HostInfo &host, bool complete);
// The medians per cell, sorted by lock, cs, policy and overcommit, for gnuplot (bench/plot.gp).
std::string summaryCsv(const std::vector<CellSummary> &cells);

} // namespace spindle::bench

#pragma once

// What one benchmark run measured, the arithmetic that turns runs into efficiency and fairness
// (results.cpp), the per-cell medians, and the writers (CSV, JSON, Markdown, plot data;
// writers.cpp). Pure: values in, strings out, so every number and every file format is
// unit-tested on fixed inputs.

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
	std::string backend;  // which KVM serves /dev/kvm: "VMX", "SVM", "PVM" or "unknown"
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
	std::vector<double> vmOps;    // per VM of plan.vms: ops per second (work units for cpu VMs)
	std::optional<double> cpuOps; // the co-runner's work units per second (Fairness runs)
	uint64_t spinWaits = 0;       // spin waits the scheduler detected (all detectors)
	uint64_t boosts = 0;
	uint64_t boostedUs = 0;
	bool boostFellBackToFifo = false; // deadline boosts asked for, the kernel refused them
	double schedulerCpuMs = 0;    // CPU time of the non-vCPU threads (see BENCHMARKS.md)
	std::optional<double> hostStealShare; // of all CPUs' time, what the host took during the run (host_steal.h)
	// Filled by deriveRatios() from the Alone / CpuAlone runs of the same scenario.
	std::vector<std::optional<double>> vmEfficiency; // per VM of plan.vms
	std::optional<double> efficiency;                // their mean, when every VM has one
	std::optional<double> fairness;                  // the co-runner's
};

// Median of the values; nullopt for none. Even counts average the two middle values.
std::optional<double> median(std::vector<double> values);

// The part of its alone throughput each VM of a run is entitled to when they share poolCpus
// CPUs, in the order given (a Fairness run's co-runner included). A fluid model of what CFS
// gives pinned, balanced vCPU threads: every vCPU thread gets an equal part of the pool, except
// that a thread wanting less (duty < 1: a sleepy vCPU) keeps only what it wants and the rest goes
// to the others (max-min fairness, water-filling); no thread gets more than one CPU. A VM's
// share is what its threads get together over what they get alone on the pool. For k equal,
// always-busy VMs of pool size this is 1/k; for always-busy VMs of at most pool size it is
// poolCpus / (vCPUs of all VMs), the same for every VM, big or small.
std::vector<double> entitledShares(const std::vector<VmTemplate> &vms, unsigned poolCpus);

// A VM's throughput against its entitled part of its throughput alone: efficiency for the
// scenario's VMs (1.0 is the physical limit), fairness for the co-runner (1.0 is its entitled
// share). nullopt without a usable alone number or share.
std::optional<double> shareRatio(double ops, double aloneOps, double share);

// Sets the per-VM efficiencies, their mean and the fairness of every successful run from the
// medians of the successful Alone / CpuAlone runs of the same scenario, template and PLE setting
// (cpu VMs: PLE on).
void deriveRatios(std::vector<RunRecord> &records);

struct CellSummary {
	std::string scenario;
	std::string lock;
	uint64_t csNs = 0;
	unsigned overcommit = 0;
	std::string policy; // label; "alone cfs" / "alone cfs-nople" for the baseline rows
	std::vector<std::string> vms; // labels of the run's VMs ("lock/2"), the co-runner not included
	unsigned runs = 0;
	unsigned okRuns = 0;
	std::optional<double> opsPerVm; // median over runs of the mean throughput of its lock VMs
	std::optional<double> efficiency, efficiencyMin, efficiencyMax;
	std::vector<std::optional<double>> vmEfficiency; // medians per VM, in the order of vms
	std::optional<double> fairness;
	std::optional<double> spinWaits, boosts, boostedMs, schedulerCpuMs; // medians
	std::optional<double> hostStealShare; // median over the cell's runs, co-runner runs included
	unsigned stolenRuns = 0; // of those, runs in which the host took more than kStolenRunShare
};

// One summary per (scenario, lock, cs, overcommit, policy) of Cell runs, plus one "alone ..."
// row per scenario, template and PLE setting, in the matrix's order. Fairness runs fold into the
// cell they belong to.
std::vector<CellSummary> summarize(const std::vector<RunRecord> &records);

// The writers (writers.cpp).
std::string runsCsv(const std::vector<RunRecord> &records, const HostInfo &host);
std::string runsJson(const std::vector<RunRecord> &records, const std::vector<CellSummary> &cells,
		     const HostInfo &host, bool complete);
std::string summaryMarkdown(const std::vector<CellSummary> &cells, const HostInfo &host, bool complete);
// The medians per cell, sorted by scenario (in matrix order), lock, cs, policy and overcommit,
// for gnuplot (bench/plot.gp): one panel per scenario, lock and cs.
std::string summaryCsv(const std::vector<CellSummary> &cells);

} // namespace spindle::bench

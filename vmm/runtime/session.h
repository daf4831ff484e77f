#pragma once

// A `spindle run` session: every VM of the command line, run together in one process, under
// one scheduler, until each guest exits, one fails, the timeout passes or a signal arrives.
// Then every thread is stopped and joined, scheduling state restored, and results written.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/cli/run_options.h"
#include "vmm/runtime/machine.h"

namespace spindle {

// What the session needs from a scheduler; implemented over sched/ (scheduler_bridge.cpp).
class SessionScheduler : public VmObserver
{
public:
	virtual Status addVm(const VirtualMachine &vm) = 0; // before the VM starts
	virtual Status start() = 0;
	virtual void vmStopped(int vm) = 0;
	virtual void stop() = 0; // restores every thread it touched
	virtual std::string metricsJson() const = 0;
	virtual std::string summary() const = 0; // one line for the end-of-run report
};

// What the guests are told they may use (boot flags and CPUID features), from --detect: a
// detector that is off is not offered to the guest either.
struct GuestEnlightenment {
	bool hints = true;    // hint slots (SPINDLE_BOOT_F_PV_HINTS, SPINDLE_CPUID_F_HINTS)
	bool longSpin = true; // long-spin records (SPINDLE_CPUID_F_LONG_SPIN)
};
Result<GuestEnlightenment> guestEnlightenment(const RunOptions &options);
// The SPINDLE_CPUID_F_* bits (also in boot info) that say so.
uint32_t cpuidFeatures(const GuestEnlightenment &enlightenment);

// What the host's KVM cannot do, as far as the scheduler cares.
struct SchedulerHostFacts {
	std::string pauseExitsUnavailable; // non-empty: why no PAUSE exit can be observed here
};

// Checks the policy, its flags, the pool and whether each VM suits the policy (gang needs every
// VM to fit the pool): input errors only; nothing is created.
Status checkSchedulerOptions(const RunOptions &options);
// Every policy, cfs included, gets a scheduler object (cfs only pins).
Result<std::unique_ptr<SessionScheduler>> makeSessionScheduler(const RunOptions &options,
							      const SchedulerHostFacts &facts = {});
bool isSchedulerFlag(const std::string &name);
std::string schedulerHelp();       // one line per policy
std::string schedulerBoundsHelp(); // one line per tuning flag

// Exit statuses beyond the guest's own codes.
constexpr int kExitVmFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;
constexpr int kExitInterrupted = 130;

// What a finished session leaves behind, for callers that run sessions in a loop (spindle bench).
struct VmReport {
	std::string name;
	unsigned cpus = 0;
	GuestResults results;
	std::string stopReason;
	std::optional<int> exitCode;
	std::string failure; // empty when the VM exited cleanly and its results pass their checks
};

struct SessionReport {
	int status = 0;
	std::vector<VmReport> vms;
	std::string schedulerMetricsJson;
	double wallSeconds = 0;
};

// Resolves guests, checks the host can hold the VMs, creates and runs them. Returns the exit
// status; errors are printed as one line each. With quiet, no result tables are printed.
int runSession(const RunOptions &options, SessionReport *report = nullptr, bool quiet = false);

// Set from SIGINT/SIGTERM handlers; the session polls it.
void installStopSignalHandlers();
// Whether SIGINT/SIGTERM arrived since the last runSession() started, including after its VMs
// had finished (its status then says so too); a caller running several sessions checks it so no
// signal falls between two of them.
bool stopSignalPending();

} // namespace spindle

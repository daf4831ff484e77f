#pragma once

// A `spindle run` session: every VM of the command line, run together in one process, under
// one scheduler, until each guest exits, one fails, the timeout passes or a signal arrives.
// Then every thread is stopped and joined, scheduling state restored, and results written.

#include <memory>
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

// Checks the policy, its flags and the pool (input errors only; nothing is created).
Status checkSchedulerOptions(const RunOptions &options);
// Every policy, cfs included, gets a scheduler object (cfs only pins).
Result<std::unique_ptr<SessionScheduler>> makeSessionScheduler(const RunOptions &options);
bool isSchedulerFlag(const std::string &name);
std::string schedulerHelp();       // one line per policy
std::string schedulerBoundsHelp(); // one line per tuning flag

// Exit statuses beyond the guest's own codes.
constexpr int kExitVmFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;
constexpr int kExitInterrupted = 130;

// Resolves guests, checks the host can hold the VMs, creates and runs them. Returns the exit
// status; errors are printed as one line each.
int runSession(const RunOptions &options);

// Set from SIGINT/SIGTERM handlers; the session polls it.
void installStopSignalHandlers();

} // namespace spindle

#pragma once

// A session: every VM of a SessionConfig, run together in one process under one scheduler,
// until each guest exits, one fails, the timeout passes or the stop token says stop. Then every
// thread is stopped and joined and its scheduling state restored. runSession() returns what
// happened as typed structs; the caller (the CLI, `spindle bench`) owns exit statuses, tables,
// --stats and the output files (vmm/runtime/report_json.h writes them).
//
// Steps: resolve (guests, images, modes: all input, before KVM), open the host (KVM, limits,
// the scheduler), create the VMs, start, wait, report.

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "sched/metrics.h"
#include "vmm/runtime/exit_counters.h"
#include "vmm/runtime/guest_results.h"
#include "vmm/runtime/machine.h"
#include "vmm/runtime/session_config.h"

namespace spindle {

class ConsoleWriter;

// Read by the session, set elsewhere (the CLI's signal handler): non-zero means stop, and which
// signal asked for it.
class StopToken
{
public:
	StopToken() = default;
	explicit StopToken(const std::atomic<int> *signal) : signal_(signal) {}
	int signal() const { return signal_ ? signal_->load() : 0; }

private:
	const std::atomic<int> *signal_ = nullptr;
};

struct SessionIo {
	ConsoleWriter *console = nullptr; // guest output when serial is Stdout (may be null: dropped)
	StopToken stop;
	bool quiet = false; // no info line about the scheduler
	// Install the main role's seccomp filter on the calling thread once the VMs run: for
	// `spindle run`, not for a caller that goes on to run more sessions (spindle bench).
	bool filterMainThread = false;
};

struct HintAtExit {
	uint32_t seq = 0;
	uint32_t locksHeld = 0;
	uint32_t waitingOn = SPINDLE_VCPU_NONE;
};

struct VcpuReport {
	ExitCounts exits;
	std::optional<HintAtExit> hint; // the hint slot as the guest left it
	ParkingCounters parking;        // WAIT and KICK
};

struct VmReport {
	std::string name;
	unsigned cpus = 0;
	GuestMode mode = GuestMode::Ring0;
	std::string modeReason;
	StopReason stopReason = StopReason::None;
	std::string stopMessage;
	std::optional<int> exitCode;
	GuestResults results;
	bool resultsOk = true;      // checkGuestResults() passed (or nothing to check)
	std::string failure;        // empty when the VM exited cleanly and its results pass their checks
	uint64_t pvMalformed = 0;
	std::vector<VcpuReport> vcpus;
};

struct SessionStats {
	uint64_t startupNs = 0;          // process start to the first guest report; 0: none
	uint64_t rssBytes = 0;           // the process at the end of the run
	uint64_t guestResidentBytes = 0; // of which guest RAM
};

struct SessionReport {
	std::vector<VmReport> vms;
	sched::SchedulerMetrics scheduler;
	bool timedOut = false;
	int signal = 0;                  // the stop token's signal, if it stopped the run
	double wallSeconds = 0;
	SessionStats stats;
	std::string failure;             // the first VM failure ("vm0: guest crashed: ..."), or empty
};

// Errors are what kept the session from running at all: bad input (isInput(): the CLI's exit 2)
// or the host (exit 1). The error's message is the one line to show.
Result<SessionReport> runSession(const SessionConfig &config, const SessionIo &io);

// Where the session's clock started: static initialisation, as close to process start as user
// code gets (for the start-up time in SessionStats).
uint64_t processStartNs();

// What the guests are told they may use (boot flags and CPUID features), from --detect: a
// detector that is off is not offered to the guest either.
struct GuestEnlightenment {
	bool hints = true;    // hint slots (SPINDLE_BOOT_F_PV_HINTS, SPINDLE_CPUID_F_HINTS)
	bool longSpin = true; // long-spin records (SPINDLE_CPUID_F_LONG_SPIN)
};
Result<GuestEnlightenment> guestEnlightenment(const SessionConfig &config);
// The SPINDLE_CPUID_F_* bits (also in boot info) that say so.
uint32_t cpuidFeatures(const GuestEnlightenment &enlightenment);

// Checks the policy, its flags, the pool and whether each VM suits the policy (gang needs every
// VM to fit the pool): input errors only; nothing is created.
Status checkSchedulerOptions(const SessionConfig &config);
bool isSchedulerFlag(const std::string &name);
std::string schedulerHelp();       // one line per policy
std::string schedulerBoundsHelp(); // one line per tuning flag

} // namespace spindle

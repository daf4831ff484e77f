#pragma once

// Scheduler configuration: the policy, every bound it uses, the detector switches and the
// host-side knobs. Every field has a documented default (sched/README.md lists them) and every
// field can be set from the command line through applySchedFlag(), so the VMM's CLI only has to
// forward "--name value" pairs it does not know itself.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/flag_table.h"
#include "common/result.h"

namespace spindle::sched {

enum class PolicyKind {
	Cfs,      // stock Linux scheduling of pinned vCPU threads; no reaction
	Yield,    // stock Xen: the spinner gives up its CPU (bounded deprioritization)
	Coboost,  // KAIST co-boosting of the spinner's runnable siblings
	Extend,   // patent: time-slice extension for hinted lock holders
	Express,  // patent: express scheduling of a named, de-scheduled vCPU
	Gang,     // baseline: all vCPUs of a VM together, VMs take turns
	Adaptive, // Spindle's own: picks the response per VM from what is known
};

// What --trace writes.
enum class TraceFormat {
	JsonLines, // one JSON object per event, as it happens (sched/trace.h)
	Perfetto,  // Chrome/Perfetto trace-event JSON, written whole at flush: open in ui.perfetto.dev
};

enum class BoostClass {
	Deadline, // SCHED_DEADLINE with the pool's full affinity; FIFO on EBUSY/EPERM
	Fifo,     // SCHED_FIFO, pinned
};

struct SchedulerOptions {
	PolicyKind policy = PolicyKind::Cfs;

	uint64_t tickNs = 1'000'000;             // sampling period of hints, thread states, counters
	// The tick while nothing needs the fast one (SchedCore::quietTickAllowed): no spin wait for
	// 100 ticks, nothing boosted or in debt, a policy that acts only on spin waits. A 1 ms tick
	// costs the scheduler thread 3% of a CPU on the PVM host even when it has nothing to do; the
	// price is that the first spin after a quiet spell is seen up to one quiet tick late (a PV
	// long-spin report wakes the scheduler at once). Never shorter than tickNs in effect.
	uint64_t quietTickNs = 10'000'000;
	// The longest fast tick after ticks that found nothing to do (tick_backoff.h): each such
	// tick doubles the period up to this, any spin wait or boost brings it back to tickNs.
	// Not below tickNs in effect (which turns the back-off off).
	uint64_t tickBackoffNs = 4'000'000;
	uint64_t boostSliceNs = 1'000'000;       // co-boost slice (the KAIST 1 ms)
	uint64_t yieldNs = 500'000;              // how long a yielding spinner is deprioritized
	uint64_t yieldMinIntervalNs = 2'000'000; // a vCPU yields at most once per interval
	uint64_t extendMaxNs = 500'000;          // longest time-slice extension
	uint32_t extendMaxPerWindow = 4;         // extensions per vCPU per window
	uint64_t extendWindowNs = 10'000'000;    // the window for extendMaxPerWindow
	uint64_t expressNs = 50'000;             // express-scheduling window (the patent's 50 us)
	uint64_t expressMinIntervalNs = 1'000'000; // a vCPU is expressed at most once per interval
	uint64_t gangQuantumNs = 10'000'000;     // gang scheduling: a VM's turn
	uint32_t repayPercent = 25;              // debt is repaid at this share of wall time
	int32_t debtNice = 5;                    // nice increment while a vCPU is in debt
	uint64_t pvMinIntervalNs = 100'000;      // per-vCPU rate limit of long-spin notifications
	uint32_t spinLow = 2;                    // pattern detector: PAUSE exits per tick below = no spin
	uint32_t spinHigh = 8;                   // pattern detector: above = spin wait
	uint64_t adaptMinSliceNs = 250'000;      // adaptive: co-boost slice lower bound
	uint64_t adaptMaxSliceNs = 2'000'000;    // adaptive: co-boost slice upper bound
	uint64_t extendPollNs = 100'000;         // hint re-read period while an extension runs
	uint64_t shareWindowNs = 100'000'000;    // share guard: horizon of each VM's CPU balance
	uint32_t shareSlackPercent = 5;          // share guard: tolerated excess, % of a window's share

	bool detectPle = true;     // kvm:kvm_exit perf tracepoint per vCPU thread
	bool detectPattern = true; // two-threshold classification of PAUSE exits per tick
	bool detectPv = true;      // long-spin notifications from guests
	bool detectHints = true;   // hint slots read each tick
	bool detectSample = false; // RIP samples of running vCPUs (sched/sampling/)
	// The default --detect: sampling joins in where no PAUSE exit can be observed (PVM, no
	// tracepoint, or --ple off), the one place the unenlightened guest's spins are otherwise
	// invisible. An explicit --detect list turns this off.
	bool sampleWherePauseNeverExits = true;
	uint32_t sampleRateHz = 1000; // per second of a running vCPU's time, before back-off
	// 2 of the last 3 samples spin-like: a preempted holder's waiter spins for about one host
	// slice (a few ms), and 6 of 8 at 1 kHz reported almost none of those (sched/sampling/README).
	uint32_t sampleWindow = 3;
	uint32_t sampleLow = 1;
	uint32_t sampleHigh = 1;

	// How the scheduler learns its vCPU threads' states each tick: from sched:sched_switch
	// events (auto: when the host allows system-wide per-CPU perf events) or by reading /proc.
	enum class ThreadStateSource { Auto, Switch, Proc };
	ThreadStateSource threadStates = ThreadStateSource::Auto;

	// FIFO by default: measured here, a deadline boost reached the CPU ~7.5 ms after the spin
	// report (the sched_setattr alone ~1.2 ms), far past a 1 ms slice; FIFO took ~60 us.
	BoostClass boostClass = BoostClass::Fifo;
	uint32_t fifoPriority = 10; // SCHED_FIFO priority of a boosted thread (fallback or chosen)
	bool forceEpoll = false;    // use epoll even when io_uring works
	// At most this many vCPUs boosted at once (gang turns excepted); 0 = no cap. Not a flag:
	// Scheduler sets it to the host CPUs this process may use minus one, so FIFO boosts can
	// never occupy every CPU and starve the (normal-priority) scheduler thread that ends them.
	// Seen without it: the emulated KVM host froze under adaptive on a pool of all its CPUs.
	uint32_t maxConcurrentBoosts = 0;
	std::string tracePath;      // trace of scheduler events; empty = none
	TraceFormat traceFormat = TraceFormat::JsonLines;
	// Set by the VMM where it knows PAUSE never exits (a KVM without a PAUSE intercept): the
	// PLE detector stays off and this is the reason given, once.
	std::string pleUnavailableReason;
};

struct PolicyDescription {
	std::string_view name;
	std::string_view summary;
};

struct FlagDescription {
	std::string_view name;  // without the leading "--"
	std::string_view value; // e.g. "DURATION"
	std::string_view help;  // one line, default included
};

Result<PolicyKind> parsePolicyName(std::string_view name);
std::string_view policyName(PolicyKind kind);
const std::vector<PolicyDescription> &policyDescriptions();

// The flags applySchedFlag() understands, for the VMM's --help.
const std::vector<FlagDescription> &schedFlags();
// The same flags as a table; without the run flags: all but policy and trace, which spindle run
// lists as its own.
const FlagTable<SchedulerOptions> &schedFlagTable(bool withRunFlags);

// Applies one flag ("--boost-slice" or "boost-slice") with its value. Rejects unknown names,
// malformed values and values out of the flag's range, naming the flag.
Status applySchedFlag(SchedulerOptions &options, std::string_view name, std::string_view value);

// Checks the relations between fields (spin-low <= spin-high, min slice <= max slice, ...).
Status validateOptions(const SchedulerOptions &options);

// Whether the policy grants debited boosts, and so is held to each VM's share by the share
// guard. The baselines (cfs, yield, gang) are measured as they are.
bool policyIsShareGuarded(PolicyKind kind);

// Whether the policy responds to detected spin waits (yield, coboost, express, adaptive); the
// others only count them, so a missing spin detector matters less to them.
bool policyReactsToSpins(PolicyKind kind);

// Gang runs a VM's vCPUs together at one priority; two of them stacked on one CPU never
// time-share under SCHED_FIFO, so a VM larger than the pool cannot be gang-scheduled.
Status checkVmFitsPolicy(PolicyKind kind, std::string_view vmName, unsigned vcpus, size_t poolCpus);

} // namespace spindle::sched

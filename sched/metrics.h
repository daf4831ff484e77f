#pragma once

// What the scheduler counts, as typed structs, and their one JSON form. Every per-vCPU and
// per-VM counter is named once, in the lists below: the struct member, the sum over a VM's vCPUs
// and the JSON key all come from that line, so a new counter is one line.
//
// JSON (compact, the KVM tests and the bench harness parse it):
//   {"policy":…, "vms":[{"name":…, "totals":{vCPU counters summed}, VM counters…,
//    "vcpus":[{vCPU counters}…]}…], "extension_end_late_max_us":…, "extension_end_late_mean_us":…,
//    and from a Scheduler: "event_loop":…, "ple_detector":…, "fifo_fallback":…,
//    "actuation_errors":…, host boost and restore counters…}

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "sched/options.h"

namespace spindle::sched {

// Spin waits are counted per detector that reported them.
enum class SpinSource : uint8_t { Ple, Pattern, Pv, Hint, Sampled };
constexpr unsigned kSpinSources = 5;

const char *toString(SpinSource source);

// How a counter is reported: durations are kept in ns and reported in µs.
constexpr uint64_t kAsCount = 1;
constexpr uint64_t kNsAsUs = 1000;

// X(member, JSON key, reporting divisor), in JSON order. In the JSON the spin counts by source
// come first ("spins_ple", "spins_pattern", ...: one per SpinSource).
#define SPINDLE_VCPU_COUNTERS(X)                                                                                    \
	X(boosts, "boosts", kAsCount)                               /* boosts granted (any reason) */               \
	X(boostedNs, "boosted_us", kNsAsUs)                         /* time spent boosted */                        \
	X(debitedNs, "debited_us", kNsAsUs)                         /* debited to the ledger (overruns included) */ \
	X(overrunNs, "overrun_us", kNsAsUs)                         /* boosted beyond the budget, host-measured */  \
	X(repaidNs, "repaid_us", kNsAsUs)                           /* debt paid back */                            \
	X(deniedBounds, "denied_bounds", kAsCount)                  /* refused by a bound (count, interval...) */   \
	X(deniedDebt, "denied_debt", kAsCount)                      /* refused: the vCPU is in debt */              \
	X(deniedShare, "denied_share", kAsCount)                    /* refused: its VM is over its share */         \
	X(pvAccepted, "pv_accepted", kAsCount)                      /* long-spin notifications acted on */          \
	X(pvDropped, "pv_dropped", kAsCount)                        /* ... dropped by the rate limit */             \
	X(hintsInvalid, "hints_invalid", kAsCount)                  /* hint values out of range, neutralized */     \
	X(extensionsGranted, "extensions_granted", kAsCount)                                                        \
	X(extensionsEndedEarly, "extensions_ended_early", kAsCount) /* the hint said released */                    \
	X(expressRuns, "express_runs", kAsCount)                                                                    \
	X(yields, "yields", kAsCount)                                                                               \
	X(moves, "moves", kAsCount)                                                                                 \
	X(movesHome, "moves_home", kAsCount)                        /* back home when the moving boost ended */     \
	X(cpuNs, "cpu_us", kNsAsUs)                                 /* thread CPU time (schedstat), each tick */ \
	X(samples, "samples", kAsCount)                             /* RIP samples classified (sampling) */

#define SPINDLE_VM_COUNTERS(X)                                                                        \
	X(coboosts, "coboosts", kAsCount)                   /* co-boost rounds started */             \
	X(coboostsInFlight, "coboosts_in_flight", kAsCount) /* spins ignored: a round in flight */    \
	X(gangTurns, "gang_turns", kAsCount)                /* quanta this VM was given */            \
	X(gangHoleCpuNs, "gang_hole_cpu_us", kNsAsUs)       /* pool CPU time its turns left unused */ \
	X(shareHolds, "share_holds", kAsCount)              /* times the share guard held it back */  \
	X(shareHeldNs, "share_held_us", kNsAsUs)            /* time spent held back */

// Boosts as the host saw them, from the boost system call to the unboost system call. The
// model's boosted time is the budget it granted; these say whether the host really kept it.
// Then the restores, each read back from the kernel: every vCPU thread's (once, when it is
// forgotten) and every return of the scheduler thread from SCHED_FIFO.
#define SPINDLE_HOST_BOOST_COUNTERS(X)                                                                     \
	X(applied, "boosts_applied", kAsCount)                                                             \
	X(appliedNs, "boost_applied_us", kNsAsUs)                    /* boost to unboost system call */    \
	X(overrunMaxNs, "boost_overrun_max_us", kNsAsUs)             /* longest past its budget */         \
	X(alarmEnds, "boosts_ended_by_alarm", kAsCount)              /* by the thread's own timer */       \
	X(alarmLateMaxNs, "boost_alarm_late_max_us", kNsAsUs)        /* ... longest past the budget */     \
	X(latencyMaxNs, "actuation_latency_max_us", kNsAsUs)         /* decision to end of system call */  \
	X(realtimeSwitches, "scheduler_realtime_switches", kAsCount) /* scheduler thread in/out of FIFO */ \
	X(restores, "restores", kAsCount)                            /* threads put back, read back */     \
	X(restoreMismatches, "restore_mismatches", kAsCount)         /* ... not as recorded: must be 0 */

#define SPINDLE_COUNTER_MEMBER(member, key, divisor) uint64_t member = 0;

// Per vCPU; a VM's totals are the sums (operator+=).
struct VcpuCounters {
	uint64_t spins[kSpinSources] = {}; // spin waits detected, by SpinSource
	SPINDLE_VCPU_COUNTERS(SPINDLE_COUNTER_MEMBER)

	VcpuCounters &operator+=(const VcpuCounters &other);
};

struct VmCounters {
	SPINDLE_VM_COUNTERS(SPINDLE_COUNTER_MEMBER)
};

struct HostBoostStats {
	SPINDLE_HOST_BOOST_COUNTERS(SPINDLE_COUNTER_MEMBER)
};

#undef SPINDLE_COUNTER_MEMBER

struct VmMetrics {
	std::string name;
	VcpuCounters totals; // the sums over vcpus
	VmCounters counters;
	std::vector<VcpuCounters> vcpus;
};

// What the policy core knows (SchedCore::metrics()).
struct CoreMetrics {
	PolicyKind policy = PolicyKind::Cfs;
	std::vector<VmMetrics> vms;
	// Extensions ended because a re-read hint said released: how long after the previous read
	// of the slot (the release happened in between).
	uint64_t extensionEndLateMaxNs = 0;
	uint64_t extensionEndLateMeanNs = 0;
};

// What only the host side knows (the Scheduler).
struct HostMetrics {
	std::string eventLoop; // "io_uring", "epoll", or "none" before start()
	bool pleDetector = false;
	bool fifoFallback = false; // a deadline boost fell back to SCHED_FIFO
	std::string threadStates = "proc"; // "switch" (sched:sched_switch events) or "proc"
	uint64_t switchEvents = 0;         // sched_switch events read
	uint64_t threadStateResyncs = 0;   // ticks re-read from /proc after lost switch events
	uint64_t threadStateFixes = 0;     // threads re-read from /proc after switches that did not add up
	uint64_t ticks = 0;                // scheduler ticks run (fewer than wall time / tick: starved or quiet)
	uint64_t quietTicks = 0;           // of those, at the quiet tick (--quiet-tick)
	uint64_t turnTicks = 0;            // of those, at a turn's end (gang's and adaptive's turns)
	uint64_t backedOffTicks = 0;       // of those, at a fast tick longer than --sched-tick (--tick-backoff)
	uint64_t threadsAttached = 0;      // vCPU threads attached (each is restored and read back)
	uint64_t samplersStopped = 0;      // vCPUs no longer sampled: their VM sends PV long-spin reports
	uint64_t actuationErrors = 0;
	HostBoostStats boosts;
};

// Scheduler::metrics(): one object in the JSON, the core's fields then the host's.
struct SchedulerMetrics {
	CoreMetrics core;
	HostMetrics host;
};

// The sum of every VM's totals (what a whole run counted).
VcpuCounters totalOverVms(const CoreMetrics &metrics);
uint64_t spinWaits(const VcpuCounters &counters); // over every SpinSource

void writeJson(JsonWriter &json, const VcpuCounters &counters);
void writeJson(JsonWriter &json, const CoreMetrics &metrics);
void writeJson(JsonWriter &json, const SchedulerMetrics &metrics);

} // namespace spindle::sched

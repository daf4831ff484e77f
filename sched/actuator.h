#pragma once

// The host actuator: turns the core's actions into sched_setattr/sched_setaffinity calls on real
// threads, and puts every thread back the way it found it.
//
// How a boost is applied with BoostClass::Fifo (the default): the thread becomes SCHED_FIFO at
// fifoPriority and keeps its pin; the scheduler's expiry timer ends it (the scheduler thread runs
// at fifoPriority + 1 meanwhile, so a boosted thread cannot keep it away). With
// BoostClass::Deadline the thread becomes a
// SCHED_DEADLINE task with runtime = budget + kDeadlineRuntimeMarginNs and deadline = period =
// deadlineBoostPeriodNs(runtime)
// (see there); the scheduler thread stays at SCHED_FIFO fifoPriority + 1, below deadline boosts
// (Scheduler::keepAheadOfBoostsLocked says why). A deadline task may not
// be pinned (its affinity must span its root domain), so for the boost the thread gets back the
// affinity it had before Spindle pinned it — the whole machine — and global EDF places the
// boosted siblings on distinct CPUs by itself; its pin is re-applied when the boost ends. If the
// kernel refuses (EBUSY: admission control is full; EPERM: restricted affinity or no
// CAP_SYS_NICE), the boost falls back to SCHED_FIFO at fifoPriority, pinned, with a one-time
// warning. Never a silent no-op: a failure is returned.
//
// A "yield" (Deprioritize) is SCHED_IDLE, a ledger penalty is a nice increment: neither stops the
// thread, so vCPU threads stay inside KVM_RUN and KVM keeps seeing them as preempted.
//
// The registry of tracked threads is a fixed array written only by track()/untrack(), so
// restoreAll() needs no allocation and no lock: it is safe from the main thread after a signal
// flag, and even from a signal handler as long as it does not race with track().
//
// Every budgeted boost (not a gang turn) also arms the thread's BoostAlarm for budget +
// kAlarmGraceNs after it was applied: if the scheduler thread has not ended it by then (it is
// starved, stopped, or behind), the boosted thread ends it itself (boost_alarm.h). Either class.
//
// A restore is verified, not assumed: after putting a thread back, the actuator reads its state
// back and counts the restore (restores()) and, when what it reads is not what it recorded at
// track(), a mismatch (restoreMismatches()). A failed or silently ineffective restore call is
// thereby caught by what the kernel says, whatever the call returned. A thread that has exited
// (ESRCH) is counted as neither: there is nothing left to restore.

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"
#include "sched/boost_alarm.h"
#include "sched/model.h"
#include "sched/options.h"
#include "sched/sched_attr.h"

namespace spindle::sched {

// The period (= relative deadline) of a deadline boost of this runtime: twice the runtime, and
// never under kDeadlineBoostMinPeriodNs. Why the floor: without HRTICK_DL (off by default) the
// kernel notices an exhausted runtime only at a scheduler tick (4 ms at HZ=250, 10 ms at HZ=100).
// With a period shorter than the tick, the deadline of an overrun boost has already passed
// when the tick notices, so the kernel replenishes at once and the boost runs on to the next
// tick: a 1 ms boost with a 2 ms period ran up to 7.9 ms in one go here, with a 10 ms period
// at most 3.9 ms (BENCHMARKS.md, "Deadline boosts on the PVM host"). The kernel then debits the
// overrun: the thread gets no deadline runtime until its bandwidth has paid for it.
constexpr uint64_t kDeadlineBoostMinPeriodNs = 10'000'000;
constexpr uint64_t deadlineBoostPeriodNs(uint64_t runtimeNs)
{
	return runtimeNs * 2 > kDeadlineBoostMinPeriodNs ? runtimeNs * 2 : kDeadlineBoostMinPeriodNs;
}

Result<SchedAttr> getSchedAttr(pid_t tid);
Status setSchedAttr(pid_t tid, const SchedAttr &attr);

// Before a thread leaves SCHED_DEADLINE, its reservation is made empty (a 1,024 ns runtime per
// 4 s period, which is 0 in the kernel's 20-bit bandwidth fixed point). Why: a deadline task that
// leaves the class while it is blocked keeps its bandwidth in the root domain's admission total
// for good (kernel 6.18.44, measured: BENCHMARKS.md, "Deadline boosts on the PVM host"), and after a
// few leaks no one on the host can get a deadline reservation until the root domain is rebuilt.
// A change of deadline parameters is accounted at once, blocked or not, and what leaks is the
// reservation at the moment of the switch: nothing. Only system calls: safe on the signal path.
// Does nothing to a thread that is not SCHED_DEADLINE, nor to the calling thread (which is
// running, so it cannot leak, and whose spent runtime would have it throttled for seconds).
constexpr uint64_t kEmptyReservationRuntimeNs = 1024;           // the kernel's smallest
constexpr uint64_t kEmptyReservationPeriodNs = 4'000'000'000;   // under the default 4.19 s maximum
void emptyDeadlineReservation(pid_t tid);

// What reading a thread's scheduling state back says about a restore.
enum class ReadBack : uint8_t {
	Equal,     // it is what was recorded
	Different, // it is not, or it could not be read (an unverified restore is not a restore)
	Gone,      // the thread has exited
};
// Compares the thread's policy, priority, nice, flags and deadline parameters (sched_getattr),
// and with `affinity` also its affinity (sched_getaffinity), to the recorded ones. Only system
// calls, no allocation: usable on the signal path, and both calls are in every thread role's
// seccomp allow-list. (/proc/self/task/TID/{stat,status} say the same, at the cost of an open,
// a read and a parse per file, which is neither signal-safe nor allowed to the scheduler thread.)
ReadBack readBack(pid_t tid, const SchedAttr &attr, const cpu_set_t *affinity = nullptr);

class HostActuator
{
public:
	static constexpr size_t kMaxThreads = 1024;

	// Alarms off only to measure what the kernel alone does with a boost nobody ends.
	enum class Alarms : bool { Off, On };
	HostActuator(BoostClass boostClass, uint32_t fifoPriority, Alarms alarms = Alarms::On);
	~HostActuator(); // restoreAll()
	HostActuator(const HostActuator &) = delete;
	HostActuator &operator=(const HostActuator &) = delete;

	// Records the thread's policy, nice/priority and affinity, then pins it to homeCpu
	// (homeCpu < 0: leave the affinity alone).
	Status track(pid_t tid, int homeCpu);
	// Puts one thread back and forgets it.
	Status untrack(pid_t tid);
	// Puts every tracked thread back (see the class comment for when this is safe).
	void restoreAll();

	Status boost(pid_t tid, uint64_t budgetNs);
	// A gang turn (gang, adaptive's turns): SCHED_FIFO in either boost class. Turns are the
	// scheduler's rotation, not a budgeted favour, and with deadline turns adaptive-dl runs
	// stalled (PVM, 3 s runs: 5 of the first 14 timed out at 20 s, none with FIFO turns).
	Status boostTurn(pid_t tid);
	Status unboost(pid_t tid);
	Status deprioritize(pid_t tid);
	Status restoreClass(pid_t tid);
	Status setNice(pid_t tid, int delta);
	Status move(pid_t tid, int cpu);
	Status apply(const Action &action, pid_t tid);

	// When the last unboost of `tid` found its boost already ended by the thread's own alarm
	// (boost_alarm.h): the time it ended (CLOCK_MONOTONIC ns). 0 if the unboost ended it.
	uint64_t lastEndedByAlarmNs(pid_t tid);
	// Boosts ended by their alarm (the scheduler thread was late by more than kAlarmGraceNs).
	uint64_t alarmEnds() const { return alarmEnds_.load(std::memory_order_relaxed); }
	bool alarmsAvailable() const { return !alarmFailed_.load(std::memory_order_relaxed); }

	// The alarm goes off this long after the budget: the scheduler's own expiry normally comes
	// first, and the alarm (a signal into the vCPU thread, which leaves KVM_RUN) only catches a
	// late one.
	static constexpr uint64_t kAlarmGraceNs = 200'000;
	// A deadline boost's runtime is its budget plus this, so its alarm comes before the kernel's
	// throttle.
	static constexpr uint64_t kDeadlineRuntimeMarginNs = 2'000'000;

	bool fifoFallbackUsed() const { return fifoFallback_.load(std::memory_order_relaxed); }
	size_t tracked() const;
	// Restores read back (see the class comment), and those that did not read back as recorded.
	uint64_t restores() const { return restores_.load(std::memory_order_relaxed); }
	uint64_t restoreMismatches() const { return restoreMismatches_.load(std::memory_order_relaxed); }

private:
	enum class Mode : uint8_t { Normal, Deadline, Fifo, Idle };
	struct Entry {
		std::atomic<pid_t> tid{ 0 };
		SchedAttr original;
		cpu_set_t originalAffinity;
		int pin = -1;
		int niceDelta = 0;
		Mode mode = Mode::Normal;
		BoostAlarm alarm;             // ends a budgeted boost if the scheduler does not
		uint64_t endedByAlarmNs = 0;  // the last boost's end, when its alarm ended it
	};

	Entry *find(pid_t tid);
	Status applyNormal(Entry &e, SchedAttr attr);
	Status pin(Entry &e);
	Status boostFifo(Entry &e);
	// Before a boost is replaced or ended: the alarm disarmed, or its end taken into the mode.
	BoostAlarm::Taken takeAlarm(Entry &e);
	// After a boost is applied, or its way back changed (pin, nice): the alarm for it.
	// `boosted`: the class the boost puts (or has put) the thread in.
	void armAlarm(Entry &e, uint64_t atNs, Mode boosted);
	AlarmReturn alarmReturn(const Entry &e, Mode boosted) const;
	// The way back changed while a boost is armed: re-armed for the same time.
	void refreshAlarm(Entry &e);
	Status boostWithoutAlarm(Entry *e, pid_t tid, uint64_t budgetNs);
	struct Restored {
		ReadBack readBack = ReadBack::Gone;
		int callError = 0; // errno of the first restore call that failed, 0 if none did
	};
	// Puts the thread back to its recorded state, reads it back, counts it, forgets it.
	Restored restoreEntry(Entry &e, pid_t tid);

	BoostClass boostClass_;
	uint32_t fifoPriority_;
	Alarms alarms_;
	std::unique_ptr<Entry[]> entries_;
	std::atomic<bool> fifoFallback_{ false };
	std::atomic<bool> alarmFailed_{ false };
	std::atomic<uint64_t> alarmEnds_{ 0 };
	// Atomics: restoreAll() may run on the signal path while the scheduler reads metrics.
	std::atomic<uint64_t> restores_{ 0 };
	std::atomic<uint64_t> restoreMismatches_{ 0 };
};

} // namespace spindle::sched

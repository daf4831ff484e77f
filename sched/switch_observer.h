#pragma once

// Thread states from the kernel's sched:sched_switch and sched:sched_wakeup tracepoints instead
// of /proc: perf rings drained by the scheduler thread each tick. A switch says which thread
// leaves a CPU and why (still runnable: preempted; else sleeping) and which one takes it; a
// wake-up says a sleeping thread is runnable again. With timestamps, the running/runnable/halted
// state of every tracked thread and the CPU time it used follow without a system call per
// thread per tick. Polling /proc costs two preads per vCPU per 1 ms tick.
//
// Switches are read on the pool's CPUs only (vCPU threads are pinned there); wake-ups on every
// online CPU, because a wake-up is recorded where the waker runs, which may be outside the
// pool. Each drain merges the rings by time before applying, so a wake-up seen on one CPU
// cannot overtake the sleep it ends on another.
//
// The record parsing and the state machine are pure (SwitchTracker), so they are unit-tested
// on hand-made records; SwitchObserver adds the perf rings.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "sched/model.h"
#include "sched/pid_table.h"

namespace spindle::sched {

// Where sched_switch's fields are in a raw record (from the tracepoint's format file).
struct SwitchFormat {
	uint32_t prevPid = 24, prevState = 32, prevStateSize = 8, nextPid = 56;
};
// Parses the "format" file of sched:sched_switch; refuses one without the four fields.
Result<SwitchFormat> parseSwitchFormat(std::string_view text);

struct SwitchEvent {
	uint64_t timeNs = 0;
	int cpu = -1;
	pid_t prevPid = 0;
	bool prevRunnable = false; // preempted (state R, or the preempt flag), not sleeping
	pid_t nextPid = 0;
};
// One raw sched_switch payload (PERF_SAMPLE_RAW); nullopt when it is too short for the format.
std::optional<SwitchEvent> decodeSwitch(std::span<const uint8_t> raw, const SwitchFormat &format, uint64_t timeNs,
					int cpu);

// Where sched_wakeup's fields are.
struct WakeupFormat {
	uint32_t pid = 24, targetCpu = 32;
};
Result<WakeupFormat> parseWakeupFormat(std::string_view text);

struct WakeupEvent {
	uint64_t timeNs = 0;
	pid_t pid = 0;
	int targetCpu = -1;
};
std::optional<WakeupEvent> decodeWakeup(std::span<const uint8_t> raw, const WakeupFormat &format, uint64_t timeNs);

// The states of the tracked threads, from the switches seen.
class SwitchTracker
{
public:
	struct View {
		VcpuState state = VcpuState::Halted;
		int cpu = -1;
		uint64_t runtimeNs = 0; // CPU time accumulated from switches
	};

	// From now on tid is followed; its first state comes from elsewhere (one /proc read).
	void track(pid_t tid, VcpuState initial, int cpu, uint64_t nowNs);
	void untrack(pid_t tid);
	void apply(const SwitchEvent &event);
	void apply(const WakeupEvent &event); // a halted thread becomes runnable
	// A halted thread that is runnable after all (a wake-up).
	void sawRunnable(pid_t tid, int cpu);
	// The state from elsewhere (/proc); runtimeNs, when given, replaces the CPU time counted.
	void resync(pid_t tid, VcpuState state, int cpu, uint64_t nowNs, std::optional<uint64_t> runtimeNs = std::nullopt);
	// The view at nowNs: a running thread's CPU time includes its current stint.
	std::optional<View> view(pid_t tid, uint64_t nowNs) const;
	// The threads whose switches did not add up since the last call and could not be repaired
	// (see missedBefore): the caller re-reads them from /proc. Switches do go missing without a
	// PERF_RECORD_LOST. Measured on our PVM host (kernel 6.18.44, 2 CPUs) with perf(1) itself:
	// nothing is recorded while CPU 1's idle task is current, neither sched tracepoints (even
	// counted, `perf stat -a -A`: CPU 1 showed 18,699 sched_switch against 27,237
	// context-switches, CPU 0 30,628 of 30,628) nor PERF_RECORD_SWITCH_CPU_WIDE. So every switch
	// out of idle on CPU 1, and every wake-up done in an interrupt that CPU takes while idle, is
	// missing; the switches into idle arrive. Also seen: beside a libFuzzer process nearly every
	// switch out of that process went missing; with busy vCPU threads a few per second. Why the
	// kernel drops them was not found.
	std::vector<pid_t> takeSuspects();
	// Whether a suspect's state is a guess (its switch-out was lost, so running might be
	// runnable or asleep): then the caller re-reads the state too. Otherwise the switch that
	// raised the suspicion gave the state, and only the CPU time needs /proc.
	bool stateInDoubt(pid_t tid) const;
	// The CPU time from elsewhere (schedstat); the state stays the switches'.
	void setRuntime(pid_t tid, uint64_t runtimeNs, uint64_t nowNs);
	// A lost switch-in whose switch-out arrived leaves the stint's start a guess: the thread is
	// credited its typical stint (at most the gap since the CPU's last switch), and the gap is
	// added to what its CPU time may be off by. It becomes a suspect once that passes this
	// budget, so its CPU time is never further off than this: a fifth of the share guard's slack
	// for a VM entitled to one CPU (5% of its 100 ms window, 5 ms).
	static constexpr uint64_t kUnverifiedBudgetNs = 1'000'000;
	// CPU ids come from the kernel's records and /proc; from this one on they are no CPU (the
	// kernel's NR_CPUS tops out at 8192): a switch there is ignored, so a stray id cannot grow
	// the per-CPU tables without bound.
	static constexpr int kMaxCpus = 8192;
	uint64_t unverifiedNs(pid_t tid) const;
	uint64_t missedSwitches() const { return missed_; } // switches inferred from the ones around them
	// The tracked thread believed running on cpu, if any.
	std::optional<pid_t> runningOn(int cpu) const;
	// The thread that reads the events (the scheduler thread). Its own wake-ups for a tick take
	// a CPU from a vCPU for some microseconds; that vCPU is still shown running.
	void setObserver(pid_t tid) { observer_ = tid; }

private:
	struct Thread {
		View view;
		uint64_t runningSinceNs = 0;
		bool suspect = false;
		bool stateInDoubt = false; // running was believed, but the switch-out was never seen
		// The state came from a /proc read at syncedAtNs, not from switches: events older than
		// that are already in it (skipped), and the first switch after it is not held against it
		// (/proc shows a thread about to sleep as sleeping while it still runs).
		uint64_t syncedAtNs = 0;
		bool fromEvents = false;
		uint64_t wokenAtNs = 0; // the last wake-up seen
		bool displaced = false; // running, but its CPU lent to the observer for a moment
		bool exactStart = false;     // the current stint's switch-in was seen
		uint64_t typicalStintNs = 0; // running average of the stints seen whole
		uint64_t unverifiedNs = 0;   // what guessed stints may be off by since /proc last said
	};
	struct CpuSeen {
		pid_t current = -1; // who the last switch on this CPU put there (-1: none seen yet)
		uint64_t lastNs = 0;
	};
	void suspect(pid_t tid, Thread &t);
	void stopRunning(Thread &t, uint64_t atNs);
	// A switch on event.cpu that leaves another thread than the one the last switch put there.
	void missedBefore(const SwitchEvent &event, const CpuSeen &cpu);
	// A switch to or from the observer thread; true when it needs nothing else.
	bool applyObserverSwitch(const SwitchEvent &event, CpuSeen &cpu);
	CpuSeen *cpuSeen(int cpu); // nullptr for an id that is no CPU
	void setRunningOn(int cpu, pid_t tid);
	void clearRunningOn(int cpu, pid_t tid); // if tid is the one believed running there
	pid_t observer_ = 0;
	PidTable<Thread> threads_;
	std::vector<CpuSeen> cpus_; // by CPU id
	uint64_t missed_ = 0;
	std::vector<pid_t> runningOn_; // CPU id -> tracked thread believed running there (0: none)
	std::vector<pid_t> suspects_;
};

class SwitchObserver
{
public:
	// One ring per online CPU (switches of pool CPUs and wake-ups share it); needs root or
	// CAP_PERFMON (system-wide per-CPU events) and the tracepoints' ids and formats (tracefs,
	// mounted for a moment as for kvm:kvm_exit).
	static Result<std::unique_ptr<SwitchObserver>> open(const std::vector<int> &pool, const std::vector<int> &online);
	~SwitchObserver();

	SwitchTracker &tracker() { return tracker_; }
	struct Drained {
		uint64_t events = 0;
		uint64_t lost = 0; // switches the kernel dropped on a full ring: states may be stale
	};
	// Drains every ring into the tracker.
	Drained drain();

private:
	struct Ring {
		UniqueFd fd;       // sched_wakeup on this CPU; owns the ring
		UniqueFd switchFd; // sched_switch on this CPU (pool CPUs), output into the same ring
		void *map = nullptr;
		int cpu = -1;
	};
	struct Pending {
		uint64_t timeNs;
		uint32_t order; // in the drain: rings in turn, each in its order
		bool wakeup;
		SwitchEvent switchEvent; // when !wakeup
		WakeupEvent wakeupEvent; // when wakeup
	};
	SwitchObserver() = default;
	void readRing(Ring &ring, Drained &drained);

	SwitchFormat switchFormat_;
	WakeupFormat wakeupFormat_;
	uint16_t switchId_ = 0, wakeupId_ = 0; // common_type, the first field of every record
	std::vector<Ring> rings_;
	std::vector<Pending> pending_; // one drain's records, merged by time
	SwitchTracker tracker_;
};

} // namespace spindle::sched

#pragma once

// The state of every vCPU thread once per tick (running, runnable or halted, on which CPU, and
// the CPU time it used since the last tick), from one of two sources:
//  - switch: the sched:sched_switch and sched:sched_wakeup events (SwitchObserver). A tick
//    costs one drain of a ring per online CPU, whatever the number of vCPUs; after lost
//    events (a full ring) one tick reads /proc instead and the tracker starts again from it.
//    A switch can also go missing without a trace (switch_observer.h): the threads whose
//    switches stop adding up are re-read from /proc (schedstat alone where the switches know
//    the state), and so is one thread every 4 ms in turn.
//  - proc: two pread()s per thread per tick (/proc/self/task/TID/{stat,schedstat}) and the
//    per-CPU classification of observer.h. Needs nothing but /proc; costs more as vCPUs grow.
// auto takes switch where the host allows system-wide per-CPU perf events (root or
// CAP_PERFMON) and says once why when it falls back.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "sched/model.h"
#include "sched/observer.h"
#include "sched/options.h"
#include "sched/pid_table.h"

namespace spindle::sched {

class SwitchObserver;

class ThreadStates
{
public:
	struct Observation {
		bool present = false; // false: the thread is gone (its VM is stopping)
		VcpuState state = VcpuState::Halted;
		int cpu = -1;
		uint64_t runtimeDeltaNs = 0;
	};

	// pool: the CPUs vCPU threads are pinned to (the only CPUs whose switches matter).
	static Result<std::unique_ptr<ThreadStates>> create(SchedulerOptions::ThreadStateSource source,
							    const std::vector<int> &pool);
	~ThreadStates();

	Status track(pid_t tid);
	void untrack(pid_t tid);
	// One observation per tid, in order; called once per tick.
	std::vector<Observation> observe(std::span<const pid_t> tids);

	const char *sourceName() const { return switches_ ? "switch" : "proc"; }
	uint64_t switchEvents() const { return switchEvents_; }
	uint64_t resyncs() const { return resyncs_; } // ticks re-read from /proc after lost switches
	uint64_t fixes() const { return fixes_; }     // threads re-read after switches that did not add up

private:
	ThreadStates() = default;
	std::vector<Observation> observeProc(std::span<const pid_t> tids);
	std::vector<Observation> observeSwitches(std::span<const pid_t> tids);
	enum class Reread {
		Check,           // every kCheckEveryNs in turn: CPU time, and the state if it does not add up
		Runtime,         // a suspect whose state the switches know
		StateAndRuntime, // a suspect whose state is a guess
	};
	// What /proc says of one thread, into the tracker.
	void reread(pid_t tid, Reread kind, uint64_t nowNs);

	struct Thread {
		ThreadProcFiles proc;
		uint64_t lastRuntimeNs = 0; // what the last observation reported, in the source's account
		uint64_t baseNs = 0;        // schedstat CPU time when tracking began
	};
	PidTable<Thread> threads_;
	std::unique_ptr<SwitchObserver> switches_;
	uint64_t switchEvents_ = 0;
	uint64_t resyncs_ = 0;
	uint64_t fixes_ = 0;
	size_t nextCheck_ = 0;
	uint64_t lastCheckNs_ = 0;
	static constexpr uint64_t kCheckEveryNs = 4'000'000;
	pid_t observerTid_ = 0; // the thread that calls observe(), learnt at its first call
};

} // namespace spindle::sched

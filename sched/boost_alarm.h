#pragma once

// A boost that ends itself on time, whether or not the scheduler thread gets to run.
//
// Why: the scheduler thread ends a boost at its expiry, but a starved scheduler thread (a deadline
// boost on its CPU is above any FIFO priority, a stopped or preempted process) cannot, and the
// kernel's own bound on a SCHED_DEADLINE budget is one scheduler tick (4 ms at HZ=250 without
// HRTICK_DL; BENCHMARKS.md, "Deadline boosts on the PVM host"), while a SCHED_FIFO boost has no
// bound but RT throttling. So every budgeted boost also arms a POSIX timer (CLOCK_MONOTONIC, an
// hrtimer) whose signal goes to the boosted thread itself (SIGEV_THREAD_ID). That thread is the
// one running on the boosted priority, so the signal reaches it at once: it leaves KVM_RUN (or
// any wait) and its handler puts the thread back in its normal class with two system calls on
// itself. A thread switching itself out of SCHED_DEADLINE is running, so it cannot leak its
// reservation (actuator.h, emptyDeadlineReservation).
//
// Ownership: one owner (the actuator) arms and takes the alarm; the handler only acts on an
// armed alarm whose time has come, and says so in the slot. States, all in one atomic:
//   Idle -arm()-> Armed -handler-> Ending -> Ended     (the alarm ended the boost)
//   Armed -take()-> Idle                                (the owner ended or replaced it first)
//   Ended -take()-> Idle, reporting that the alarm had ended it.
// A signal that arrives stale (a timer disarmed or re-armed after it fired) finds Idle, or an
// alarm time still ahead, and does nothing.

#include <sched.h>
#include <sys/types.h>

#include <cstdint>

#include "common/result.h"
#include "sched/sched_attr.h"

namespace spindle::sched {

// The signal the alarms raise: a realtime signal past glibc's own.
int boostAlarmSignal();

// What the boosted thread does to itself when its alarm goes off.
struct AlarmReturn {
	SchedAttr attr;             // its normal class
	bool setAffinity = false;   // and, after a deadline boost (which had to leave its pin),
	cpu_set_t affinity{};       // its pin
};

class BoostAlarm
{
public:
	// Global slots, so a late signal never finds freed memory: at most this many at once.
	static constexpr int kSlots = 4096;

	// The alarm for thread `tid` of this process. Installs the handler once per process and, when
	// `tid` is the calling thread, unblocks the signal for it (a thread tracked from another
	// thread must not block it). Errors: EAGAIN (every slot in use), timer_create's errno.
	static Result<BoostAlarm> create(pid_t tid);

	BoostAlarm() = default;
	BoostAlarm(BoostAlarm &&other) noexcept;
	BoostAlarm &operator=(BoostAlarm &&other) noexcept;
	BoostAlarm(const BoostAlarm &) = delete;
	BoostAlarm &operator=(const BoostAlarm &) = delete;
	~BoostAlarm() { release(); }

	bool valid() const { return slot_ >= 0; }

	// At atNs (CLOCK_MONOTONIC) the thread applies `back` to itself, unless take() came first.
	Status arm(uint64_t atNs, const AlarmReturn &back);
	enum class Taken : uint8_t {
		NotArmed,     // nothing was armed
		Disarmed,     // armed, and now it will not go off
		EndedByAlarm, // it went off: the thread is back in its normal class (endedAtNs())
	};
	// Takes the boost back from the alarm before the owner changes the thread. Waits (sleeping,
	// so a handler on this CPU can finish) for one going off right now. Only system calls and
	// atomics: usable on the signal path.
	Taken take();
	// When the alarm that was last armed went off (CLOCK_MONOTONIC ns, read just before the system
	// call that ends the boost), 0 if it did not.
	uint64_t endedAtNs() const;
	uint64_t armedAtNs() const;
	// take(), then the timer and the slot are freed.
	void release();

private:
	explicit BoostAlarm(int slot) : slot_(slot) {}
	int slot_ = -1;
};

} // namespace spindle::sched

#include "sched/boost_alarm.h"

#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <utility>

#include "common/clock.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

namespace spindle::sched {

namespace {

enum Phase : uint32_t { Idle, Armed, Ending, Ended };

// A signal may be delivered a little before the time read back on the thread's CPU (the
// timer's CPU and the thread's agree on CLOCK_MONOTONIC, the comparison need not be exact);
// a stale one from an earlier boost is a whole boost early.
constexpr uint64_t kEarlyToleranceNs = 50'000;
// How long take() waits for a handler that is going off. It makes two system calls; a thread
// stopped (ptrace, SIGSTOP) inside it would hold the owner only this long.
constexpr uint64_t kEndingWaitNs = 100'000'000;

struct AlarmSlot {
	std::atomic<bool> used{ false };
	std::atomic<pid_t> tid{ 0 };
	std::atomic<uint32_t> phase{ Idle };
	std::atomic<uint64_t> atNs{ 0 };
	std::atomic<uint64_t> endedAtNs{ 0 };
	timer_t timer{};
	bool mayHaveQueuedSignal = false; // taken back at or after its time (see arm())
	// Written by the owner only while the phase is not Armed; read by the handler only after
	// its exchange from Armed (acquire), so never while being written.
	AlarmReturn back;
};

AlarmSlot gSlots[BoostAlarm::kSlots];

void onAlarm(int, siginfo_t *info, void *)
{
	const int savedErrno = errno;
	const int index = info->si_value.sival_int;
	if (info->si_code != SI_TIMER || index < 0 || index >= BoostAlarm::kSlots) {
		errno = savedErrno;
		return;
	}
	AlarmSlot &slot = gSlots[index];
	const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
	uint32_t armed = Armed;
	if (slot.tid.load(std::memory_order_acquire) == self &&
	    monotonicNs() + kEarlyToleranceNs >= slot.atNs.load(std::memory_order_acquire) &&
	    slot.phase.compare_exchange_strong(armed, Ending, std::memory_order_acq_rel)) {
		SchedAttr attr = slot.back.attr;
		attr.size = sizeof(attr);
		// Read before the call that ends the boost: once the thread is back in the fair class, a
		// waiting thread on its CPU may preempt it for a whole slice before the call returns.
		slot.endedAtNs.store(monotonicNs(), std::memory_order_relaxed);
		(void)syscall(SYS_sched_setattr, 0, &attr, 0);
		if (slot.back.setAffinity)
			(void)sched_setaffinity(0, sizeof(cpu_set_t), &slot.back.affinity);
		slot.phase.store(Ended, std::memory_order_release);
	}
	errno = savedErrno;
}

void installHandler()
{
	static std::once_flag once;
	std::call_once(once, [] {
		struct sigaction action {};
		action.sa_sigaction = onAlarm;
		sigemptyset(&action.sa_mask);
		// SA_RESTART: a boosted thread waiting in a futex or poll goes back to waiting; KVM_RUN
		// returns EINTR either way, which the vCPU loop takes as a kick.
		action.sa_flags = SA_SIGINFO | SA_RESTART;
		sigaction(boostAlarmSignal(), &action, nullptr);
	});
}

// Disarms; judged by the time whether it may have gone off (what timer_settime reads back
// cannot tell a timer that fired with its signal still queued from one that never did).
void disarmTimer(AlarmSlot &slot)
{
	itimerspec off{};
	(void)timer_settime(slot.timer, 0, &off, nullptr);
	if (monotonicNs() + kEarlyToleranceNs >= slot.atNs.load(std::memory_order_relaxed))
		slot.mayHaveQueuedSignal = true;
}

int createTimer(AlarmSlot &slot, int index, pid_t tid)
{
	sigevent event{};
	event.sigev_notify = SIGEV_THREAD_ID;
	event.sigev_signo = boostAlarmSignal();
	event.sigev_value.sival_int = index;
	event.sigev_notify_thread_id = tid;
	return timer_create(CLOCK_MONOTONIC, &event, &slot.timer);
}

} // namespace

int boostAlarmSignal()
{
	return SIGRTMIN + 1;
}

Result<BoostAlarm> BoostAlarm::create(pid_t tid)
{
	if (tid <= 0)
		return Error::invalid("no boost alarm for thread id " + std::to_string(tid));
	installHandler();
	int index = -1;
	for (int i = 0; i < kSlots && index < 0; ++i) {
		bool free = false;
		if (gSlots[i].used.compare_exchange_strong(free, true, std::memory_order_acq_rel))
			index = i;
	}
	if (index < 0)
		return Error(EAGAIN, "more than " + std::to_string(kSlots) + " boost alarms at once");
	AlarmSlot &slot = gSlots[index];
	slot.mayHaveQueuedSignal = false;
	if (createTimer(slot, index, tid) != 0) {
		Error error = Error::fromErrno("timer_create for the boost alarm of thread " + std::to_string(tid));
		slot.used.store(false, std::memory_order_release);
		return error;
	}
	slot.phase.store(Idle, std::memory_order_relaxed);
	slot.atNs.store(0, std::memory_order_relaxed);
	slot.endedAtNs.store(0, std::memory_order_relaxed);
	slot.tid.store(tid, std::memory_order_release);
	if (tid == static_cast<pid_t>(syscall(SYS_gettid))) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, boostAlarmSignal());
		pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
	}
	return BoostAlarm(index);
}

BoostAlarm::BoostAlarm(BoostAlarm &&other) noexcept : slot_(std::exchange(other.slot_, -1)) {}

BoostAlarm &BoostAlarm::operator=(BoostAlarm &&other) noexcept
{
	if (this != &other) {
		release();
		slot_ = std::exchange(other.slot_, -1);
	}
	return *this;
}

Status BoostAlarm::arm(uint64_t atNs, const AlarmReturn &back)
{
	if (slot_ < 0)
		return Error::invalid("arming an alarm that was never created");
	AlarmSlot &slot = gSlots[slot_];
	(void)take(); // never two in flight
	// A new timer when the last one may have gone off unhandled. A timer has one signal to
	// queue: while an earlier one is still queued (its thread throttled as a deadline task, say)
	// or was dropped as stale after a re-arm, the timer sends no new one, and every later alarm
	// of it can be lost (kernel 6.18). Only then: two system calls per boost cost ~20 us here.
	if (slot.mayHaveQueuedSignal) {
		timer_t old = slot.timer;
		if (createTimer(slot, slot_, slot.tid.load(std::memory_order_relaxed)) != 0) {
			slot.timer = old;
			return Error::fromErrno("timer_create for a boost alarm");
		}
		timer_delete(old); // a signal of it still queued finds the alarm idle or not yet due
		slot.mayHaveQueuedSignal = false;
	}
	slot.back = back;
	slot.endedAtNs.store(0, std::memory_order_relaxed);
	slot.atNs.store(atNs, std::memory_order_release);
	slot.phase.store(Armed, std::memory_order_release);
	itimerspec when{};
	when.it_value.tv_sec = static_cast<time_t>(atNs / 1'000'000'000);
	when.it_value.tv_nsec = static_cast<long>(atNs % 1'000'000'000);
	if (timer_settime(slot.timer, TIMER_ABSTIME, &when, nullptr) != 0) {
		Error error = Error::fromErrno("timer_settime for a boost alarm");
		uint32_t armed = Armed;
		slot.phase.compare_exchange_strong(armed, Idle, std::memory_order_acq_rel);
		return error;
	}
	return {};
}

BoostAlarm::Taken BoostAlarm::take()
{
	if (slot_ < 0)
		return Taken::NotArmed;
	AlarmSlot &slot = gSlots[slot_];
	const uint64_t start = monotonicNs();
	for (;;) {
		uint32_t phase = slot.phase.load(std::memory_order_acquire);
		switch (phase) {
		case Idle: return Taken::NotArmed;
		case Armed:
			if (slot.phase.compare_exchange_strong(phase, Idle, std::memory_order_acq_rel)) {
				disarmTimer(slot);
				return Taken::Disarmed;
			}
			break;
		case Ended:
			if (slot.phase.compare_exchange_strong(phase, Idle, std::memory_order_acq_rel))
				return Taken::EndedByAlarm;
			break;
		default: { // Ending: the thread is in its handler
			if (monotonicNs() - start > kEndingWaitNs)
				return Taken::EndedByAlarm; // it got as far as ending; the owner's next call settles the rest
			timespec pause{ 0, 20'000 };
			nanosleep(&pause, nullptr);
			break;
		}
		}
	}
}

uint64_t BoostAlarm::endedAtNs() const
{
	return slot_ < 0 ? 0 : gSlots[slot_].endedAtNs.load(std::memory_order_relaxed);
}

uint64_t BoostAlarm::armedAtNs() const
{
	return slot_ < 0 ? 0 : gSlots[slot_].atNs.load(std::memory_order_acquire);
}

void BoostAlarm::release()
{
	if (slot_ < 0)
		return;
	AlarmSlot &slot = gSlots[slot_];
	(void)take();
	slot.tid.store(0, std::memory_order_release); // a signal still queued now finds no owner
	timer_delete(slot.timer);
	slot.used.store(false, std::memory_order_release);
	slot_ = -1;
}

} // namespace spindle::sched

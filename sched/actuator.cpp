#include "sched/actuator.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/say_once.h"

namespace spindle::sched {

namespace {

std::string tidContext(const std::string &what, pid_t tid)
{
	return what + " of thread " + std::to_string(tid);
}

} // namespace

Result<SchedAttr> getSchedAttr(pid_t tid)
{
	SchedAttr attr;
	if (syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0) != 0)
		return Error::fromErrno(tidContext("sched_getattr", tid));
	return attr;
}

Status setSchedAttr(pid_t tid, const SchedAttr &attr)
{
	SchedAttr copy = attr;
	copy.size = sizeof(copy);
	if (syscall(SYS_sched_setattr, tid, &copy, 0) != 0)
		return Error::fromErrno(tidContext("sched_setattr", tid));
	return {};
}

void emptyDeadlineReservation(pid_t tid)
{
	// Never one's own: a thread running this is not blocked, so it cannot leak, and an empty
	// reservation with the runtime already spent would throttle it for seconds before its next
	// system call, the one that leaves the class (a vCPU thread restoring itself at exit did,
	// holding the scheduler's lock).
	if (tid == static_cast<pid_t>(syscall(SYS_gettid)))
		return;
	SchedAttr now;
	if (syscall(SYS_sched_getattr, tid, &now, sizeof(now), 0) != 0 || now.policy != SCHED_DEADLINE)
		return;
	SchedAttr empty;
	empty.policy = SCHED_DEADLINE;
	empty.flags = now.flags;
	empty.runtime = kEmptyReservationRuntimeNs;
	empty.deadline = empty.period = kEmptyReservationPeriodNs;
	(void)syscall(SYS_sched_setattr, tid, &empty, 0); // a refusal leaves the leak possible, no worse
}

ReadBack readBack(pid_t tid, const SchedAttr &attr, const cpu_set_t *affinity)
{
	SchedAttr now;
	if (syscall(SYS_sched_getattr, tid, &now, sizeof(now), 0) != 0)
		return errno == ESRCH ? ReadBack::Gone : ReadBack::Different;
	if (now.policy != attr.policy || now.priority != attr.priority || now.nice != attr.nice ||
	    now.flags != attr.flags || now.runtime != attr.runtime || now.deadline != attr.deadline ||
	    now.period != attr.period)
		return ReadBack::Different;
	if (!affinity)
		return ReadBack::Equal;
	cpu_set_t set;
	if (sched_getaffinity(tid, sizeof(set), &set) != 0)
		return errno == ESRCH ? ReadBack::Gone : ReadBack::Different;
	return CPU_EQUAL(&set, affinity) ? ReadBack::Equal : ReadBack::Different;
}

HostActuator::HostActuator(BoostClass boostClass, uint32_t fifoPriority, Alarms alarms)
	: boostClass_(boostClass), fifoPriority_(fifoPriority), alarms_(alarms), entries_(new Entry[kMaxThreads])
{
}

HostActuator::~HostActuator()
{
	restoreAll();
}

HostActuator::Entry *HostActuator::find(pid_t tid)
{
	for (size_t i = 0; i < kMaxThreads; ++i)
		if (entries_[i].tid.load(std::memory_order_acquire) == tid)
			return &entries_[i];
	return nullptr;
}

size_t HostActuator::tracked() const
{
	size_t n = 0;
	for (size_t i = 0; i < kMaxThreads; ++i)
		if (entries_[i].tid.load(std::memory_order_relaxed) != 0)
			++n;
	return n;
}

Status HostActuator::track(pid_t tid, int homeCpu)
{
	if (tid <= 0)
		return Error::invalid("cannot track thread id " + std::to_string(tid));
	if (find(tid))
		return Error(EEXIST, tidContext("tracking", tid));
	Entry *slot = nullptr;
	for (size_t i = 0; i < kMaxThreads && !slot; ++i)
		if (entries_[i].tid.load(std::memory_order_relaxed) == 0)
			slot = &entries_[i];
	if (!slot)
		return Error(ENOSPC, "more than " + std::to_string(kMaxThreads) + " threads to schedule");

	auto attr = getSchedAttr(tid);
	if (!attr)
		return attr.error();
	slot->original = *attr;
	if (sched_getaffinity(tid, sizeof(cpu_set_t), &slot->originalAffinity) != 0)
		return Error::fromErrno(tidContext("sched_getaffinity", tid));
	slot->pin = homeCpu;
	slot->niceDelta = 0;
	slot->mode = Mode::Normal;
	slot->endedByAlarmNs = 0;
	slot->alarm = BoostAlarm{};
	if (auto alarm = alarms_ == Alarms::On ? BoostAlarm::create(tid) : Result<BoostAlarm>(BoostAlarm{}); alarm.ok()) {
		slot->alarm = std::move(*alarm);
	} else {
		alarmFailed_.store(true, std::memory_order_relaxed);
		if (firstTimeInProcess("boost-alarm-unavailable"))
			spdlog::warn("boosts end only when the scheduler thread ends them: {}", alarm.error().message());
	}
	// Publish only once the originals are recorded: restoreAll() may run at any time after.
	slot->tid.store(tid, std::memory_order_release);
	if (homeCpu >= 0)
		return pin(*slot);
	return {};
}

HostActuator::Restored HostActuator::restoreEntry(Entry &e, pid_t tid)
{
	// Only system calls here: this is the signal path. A thread that has exited makes every
	// call fail with ESRCH, which is fine.
	Restored restored;
	e.alarm.release(); // first: no alarm may go off after the restore
	SchedAttr attr = e.original;
	attr.size = sizeof(attr);
	emptyDeadlineReservation(tid);
	if (syscall(SYS_sched_setattr, tid, &attr, 0) != 0)
		restored.callError = errno;
	if (sched_setaffinity(tid, sizeof(cpu_set_t), &e.originalAffinity) != 0 && restored.callError == 0)
		restored.callError = errno;
	// The read-back, not the calls' return values, says whether the thread is back.
	restored.readBack = readBack(tid, e.original, &e.originalAffinity);
	if (restored.readBack != ReadBack::Gone) {
		restores_.fetch_add(1, std::memory_order_relaxed);
		if (restored.readBack == ReadBack::Different)
			restoreMismatches_.fetch_add(1, std::memory_order_relaxed);
	}
	e.tid.store(0, std::memory_order_release);
	return restored;
}

void HostActuator::restoreAll()
{
	for (size_t i = 0; i < kMaxThreads; ++i)
		if (pid_t tid = entries_[i].tid.load(std::memory_order_acquire); tid != 0)
			restoreEntry(entries_[i], tid);
}

Status HostActuator::untrack(pid_t tid)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("untracking unknown", tid));
	const Restored restored = restoreEntry(*e, tid);
	switch (restored.readBack) {
	case ReadBack::Equal: return {};
	case ReadBack::Gone: return Error(ESRCH, tidContext("restoring", tid));
	case ReadBack::Different: break;
	}
	return Error(restored.callError,
		     tidContext("restoring", tid) + ": its policy, priority or affinity reads back other than recorded");
}

Status HostActuator::pin(Entry &e)
{
	if (e.pin < 0)
		return {};
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(e.pin, &set);
	if (sched_setaffinity(e.tid.load(), sizeof(set), &set) != 0)
		return Error::fromErrno(tidContext("pinning to CPU " + std::to_string(e.pin) + ": sched_setaffinity",
						   e.tid.load()));
	return {};
}

Status HostActuator::applyNormal(Entry &e, SchedAttr attr)
{
	attr.flags = e.original.flags;
	attr.runtime = attr.deadline = attr.period = 0;
	if (e.mode == Mode::Deadline)
		emptyDeadlineReservation(e.tid.load());
	Status s = setSchedAttr(e.tid.load(), attr);
	if (!s)
		return s;
	Mode previous = e.mode;
	e.mode = Mode::Normal;
	// Leaving the deadline class: the pin can be put back only now.
	if (previous == Mode::Deadline)
		return pin(e);
	return {};
}

namespace {

SchedAttr normalAttr(const SchedAttr &original, int niceDelta)
{
	SchedAttr attr = original;
	attr.nice = std::clamp(original.nice + niceDelta, -20, 19);
	return attr;
}

} // namespace

AlarmReturn HostActuator::alarmReturn(const Entry &e, Mode boosted) const
{
	AlarmReturn back;
	back.attr = normalAttr(e.original, e.niceDelta);
	back.attr.runtime = back.attr.deadline = back.attr.period = 0;
	// A deadline boost left its pin; a FIFO boost kept it.
	back.setAffinity = boosted == Mode::Deadline && e.pin >= 0;
	CPU_ZERO(&back.affinity);
	if (back.setAffinity)
		CPU_SET(e.pin, &back.affinity);
	return back;
}

BoostAlarm::Taken HostActuator::takeAlarm(Entry &e)
{
	const BoostAlarm::Taken taken = e.alarm.take();
	if (taken == BoostAlarm::Taken::EndedByAlarm) {
		// The thread put itself back in its normal class (and on its pin).
		e.mode = Mode::Normal;
		e.endedByAlarmNs = e.alarm.endedAtNs();
		alarmEnds_.fetch_add(1, std::memory_order_relaxed);
	}
	return taken;
}

void HostActuator::armAlarm(Entry &e, uint64_t atNs, Mode boosted)
{
	if (!e.alarm.valid())
		return;
	if (Status s = e.alarm.arm(atNs, alarmReturn(e, boosted)); !s) {
		alarmFailed_.store(true, std::memory_order_relaxed);
		if (firstTimeInProcess("boost-alarm-failed"))
			spdlog::warn("a boost's alarm could not be armed ({}); it ends when the scheduler ends it",
				     s.error().message());
	}
}

void HostActuator::refreshAlarm(Entry &e)
{
	const uint64_t at = e.alarm.armedAtNs();
	const Mode boosted = e.mode;
	switch (takeAlarm(e)) {
	case BoostAlarm::Taken::Disarmed: armAlarm(e, at, boosted); break;
	case BoostAlarm::Taken::EndedByAlarm: // it went off meanwhile, with the old way back
		(void)applyNormal(e, normalAttr(e.original, e.niceDelta));
		(void)pin(e);
		break;
	case BoostAlarm::Taken::NotArmed: break;
	}
}

uint64_t HostActuator::lastEndedByAlarmNs(pid_t tid)
{
	Entry *e = find(tid);
	return e ? e->endedByAlarmNs : 0;
}

Status HostActuator::boostFifo(Entry &e)
{
	pid_t tid = e.tid.load();
	if (e.mode == Mode::Deadline) {
		Status s = applyNormal(e, normalAttr(e.original, e.niceDelta));
		if (!s)
			return s;
	}
	SchedAttr attr;
	attr.policy = SCHED_FIFO;
	attr.priority = fifoPriority_;
	attr.flags = SCHED_FLAG_RESET_ON_FORK;
	Status s = setSchedAttr(tid, attr);
	if (!s)
		return s.error().wrap("boosting (SCHED_FIFO)");
	e.mode = Mode::Fifo;
	return pin(e);
}

Status HostActuator::boost(pid_t tid, uint64_t budgetNs)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("boosting unknown", tid));
	takeAlarm(*e);
	e->endedByAlarmNs = 0;
	// The alarm first: a scheduler thread stopped between the boost and its alarm would leave a
	// boost nobody ends. An alarm that goes off before the boost is applied (this thread stopped
	// longer than the budget in between) finds the thread unboosted, and the boost it then gets
	// is past its expiry, which this thread ends as soon as it runs.
	armAlarm(*e, monotonicNs() + budgetNs + kAlarmGraceNs,
		 boostClass_ == BoostClass::Deadline ? Mode::Deadline : Mode::Fifo);
	Status s = boostWithoutAlarm(e, tid, budgetNs);
	if (!s)
		takeAlarm(*e);
	return s;
}

Status HostActuator::boostWithoutAlarm(Entry *e, pid_t tid, uint64_t budgetNs)
{
	if (boostClass_ == BoostClass::Fifo)
		return boostFifo(*e);

	// Deadline: drop the pin first (a pinned task cannot become a deadline task).
	if (sched_setaffinity(tid, sizeof(cpu_set_t), &e->originalAffinity) != 0)
		return Error::fromErrno(tidContext("unpinning for a deadline boost: sched_setaffinity", tid));
	SchedAttr attr;
	attr.policy = SCHED_DEADLINE;
	attr.flags = SCHED_FLAG_RESET_ON_FORK; // a deadline task cannot fork otherwise
	// With an alarm, the kernel's reservation outlasts it: a deadline task whose runtime runs out
	// before its alarm is handled is throttled until its next period (up to 10 ms), alarm and
	// all; measured with sched-boost-alarm-latency: p90 7.4 ms past the budget with runtime =
	// budget, BENCHMARKS.md "The boost alarm".
	const uint64_t margin = e->alarm.valid() ? kDeadlineRuntimeMarginNs : 0;
	attr.runtime = std::max<uint64_t>(budgetNs + margin, 10'000);
	attr.deadline = attr.period = deadlineBoostPeriodNs(attr.runtime);
	if (setSchedAttr(tid, attr).ok()) {
		e->mode = Mode::Deadline;
		return {};
	}
	int err = errno;
	if (err != EBUSY && err != EPERM && err != EINVAL) {
		Status restore = pin(*e);
		(void)restore;
		return Error(err, tidContext("boosting (SCHED_DEADLINE): sched_setattr", tid));
	}
	if (!fifoFallback_.exchange(true))
		spdlog::warn("SCHED_DEADLINE boost refused ({}); boosting with SCHED_FIFO priority {} instead{}",
			     std::strerror(err), fifoPriority_,
			     err == EBUSY ? " (deadline admission control is full)" : "");
	return boostFifo(*e);
}

Status HostActuator::boostTurn(pid_t tid)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("boosting unknown", tid));
	takeAlarm(*e); // a turn is not budgeted: nothing to arm
	return boostFifo(*e);
}

Status HostActuator::unboost(pid_t tid)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("unboosting unknown", tid));
	e->endedByAlarmNs = 0;
	if (e->mode != Mode::Deadline && e->mode != Mode::Fifo) {
		takeAlarm(*e);
		return {};
	}
	// The unboost first, the alarm after: in between, the alarm may still end the boost (the
	// same way back, done twice), so a scheduler thread stopped there leaves no boost unended.
	Status s = applyNormal(*e, normalAttr(e->original, e->niceDelta));
	takeAlarm(*e);
	return s;
}

Status HostActuator::deprioritize(pid_t tid)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("deprioritizing unknown", tid));
	takeAlarm(*e);
	if (e->mode == Mode::Idle)
		return {}; // already: a VM that waits through several gang turns in a row
	if (e->mode == Mode::Deadline || e->mode == Mode::Fifo) {
		Status s = applyNormal(*e, normalAttr(e->original, e->niceDelta));
		if (!s)
			return s;
	}
	SchedAttr attr;
	attr.policy = SCHED_IDLE;
	attr.flags = e->original.flags;
	Status s = setSchedAttr(tid, attr);
	if (!s)
		return s.error().wrap("deprioritizing (SCHED_IDLE)");
	e->mode = Mode::Idle;
	return {};
}

Status HostActuator::restoreClass(pid_t tid)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("restoring unknown", tid));
	if (e->mode != Mode::Idle)
		return {};
	return applyNormal(*e, normalAttr(e->original, e->niceDelta));
}

Status HostActuator::setNice(pid_t tid, int delta)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("renicing unknown", tid));
	e->niceDelta = delta;
	if (e->mode != Mode::Normal) {
		refreshAlarm(*e); // its way back now has the new nice
		return {}; // applied when the thread returns to its normal class
	}
	return applyNormal(*e, normalAttr(e->original, delta));
}

Status HostActuator::move(pid_t tid, int cpu)
{
	Entry *e = find(tid);
	if (!e)
		return Error(ESRCH, tidContext("moving unknown", tid));
	e->pin = cpu;
	if (e->mode == Mode::Deadline) {
		refreshAlarm(*e); // its way back now has the new pin
		return {}; // EDF places it now; the pin applies when the boost ends
	}
	return pin(*e);
}

Status HostActuator::apply(const Action &action, pid_t tid)
{
	switch (action.kind) {
	case ActionKind::Boost: return action.reason == BoostReason::Gang ? boostTurn(tid) : boost(tid, action.budgetNs);
	case ActionKind::Unboost: return unboost(tid);
	case ActionKind::Move: return move(tid, action.cpu);
	case ActionKind::Deprioritize: return deprioritize(tid);
	case ActionKind::Restore: return restoreClass(tid);
	case ActionKind::SetNice: return setNice(tid, action.nice);
	}
	return Error::invalid("unknown action");
}

} // namespace spindle::sched

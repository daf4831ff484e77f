// The scheduler's actuation: the core's actions applied to the host through the actuator, what
// they did recorded (boost lengths, overruns charged back to the core), and the scheduler thread
// kept above every boost it applies.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/say_once.h"
#include "sched/actuator.h"
#include "sched/core.h"
#include "sched/scheduler.h"
#include "sched/trace.h"

namespace spindle::sched {

Status Scheduler::restoreSchedulerThread(pid_t self, const SchedAttr &original, HostBoostStats &stats)
{
	Status s = setSchedAttr(self, original);
	const ReadBack readBackNow = readBack(self, original);
	if (readBackNow != ReadBack::Gone) {
		stats.restores++;
		if (readBackNow == ReadBack::Different)
			stats.restoreMismatches++;
	}
	return s;
}

void Scheduler::applyLocked()
{
	// Rise above the boosts before the first one is applied: a thread made SCHED_FIFO on this
	// thread's CPU preempts it inside that very sched_setattr, and it stayed off the CPU for
	// 20-100 ms (traced) until the load balancer moved it. Lowering waits until the last
	// unboost has been applied, for the same reason.
	// Recording an actuation can charge an overrun, which can emit a penalty: drain until quiet.
	for (std::vector<Action> actions = core_->takeActions(); !actions.empty(); actions = core_->takeActions()) {
		// A batch can boost and unboost the same vCPU (an extension granted and ended at one
		// read of its hint): the model has no boost left, the host has one for a moment.
		bool batchBoosts = std::any_of(actions.begin(), actions.end(),
					       [](const Action &a) { return a.kind == ActionKind::Boost; });
		keepAheadOfBoostsLocked(batchBoosts ? KeepAhead::Rise : KeepAhead::RiseIfBoosted);
		if (trace_)
			for (const TraceRecord &r : core_->takeTrace())
				trace_->record(r);
		for (const Action &a : actions) {
			pid_t tid = host(a.who.vm, a.who.vcpu).tid;
			if (tid == 0)
				continue; // not attached (yet): the model still tracks the grant
			Status s = actuator_->apply(a, tid);
			uint64_t done = monotonicNs(); // clock_ reads the same clock
			if (!s && actuationErrors_++ == 0 && firstTimeInProcess("scheduler-action-failed"))
				spdlog::warn("scheduler action {} on thread {} failed: {}", toString(a.kind), tid,
					     s.error().message());
			if (s && a.kind == ActionKind::Unboost)
				if (uint64_t ended = actuator_->lastEndedByAlarmNs(tid); ended != 0) {
					done = std::min(done, ended); // the thread's alarm ended it before we did
					recordAlarmEnd(a, ended);
				}
			if (s)
				recordActuation(a, done);
			if (trace_)
				trace_->actuation(a, done, s.ok());
		}
	}
	if (trace_)
		for (const TraceRecord &r : core_->takeTrace())
			trace_->record(r);
	keepAheadOfBoostsLocked(KeepAhead::Follow);
}

void Scheduler::recordActuation(const Action &a, uint64_t doneNs)
{
	HostVcpu &h = host(a.who.vm, a.who.vcpu);
	hostStats_.latencyMaxNs = std::max(hostStats_.latencyMaxNs, doneNs - std::min(doneNs, a.issuedNs));
	if (a.kind == ActionKind::Boost) {
		h.boostApplied = true;
		h.boostAppliedNs = doneNs;
		h.boostBudgetNs = a.budgetNs;
		hostStats_.applied++;
	} else if (a.kind == ActionKind::Unboost && h.boostApplied) {
		h.boostApplied = false;
		// An alarm armed before the boost's system calls may end it before they return (a
		// deadline boost that lands on this thread's CPU keeps it off for up to a tick).
		uint64_t lasted = doneNs > h.boostAppliedNs ? doneNs - h.boostAppliedNs : 0;
		hostStats_.appliedNs += lasted;
		if (lasted > h.boostBudgetNs) {
			hostStats_.overrunMaxNs = std::max(hostStats_.overrunMaxNs, lasted - h.boostBudgetNs);
			core_->chargeOverrun(a.who, lasted - h.boostBudgetNs);
		}
	}
}

void Scheduler::recordAlarmEnd(const Action &a, uint64_t endedNs)
{
	const HostVcpu &h = host(a.who.vm, a.who.vcpu);
	if (!h.boostApplied)
		return;
	const uint64_t due = h.boostAppliedNs + h.boostBudgetNs;
	if (endedNs > due)
		hostStats_.alarmLateMaxNs = std::max(hostStats_.alarmLateMaxNs, endedNs - due);
}

void Scheduler::keepAheadOfBoostsLocked(KeepAhead mode)
{
	pid_t self = schedulerTid_.load(std::memory_order_acquire);
	bool want = mode == KeepAhead::Rise || core_->boostedCount() > 0;
	if (self == 0 || want == schedulerRealtime_ || schedulerRealtimeFailed_)
		return;
	if (!want && mode != KeepAhead::Follow)
		return; // lower only once the batch is applied
	SchedAttr attr = schedulerOriginal_;
	// SCHED_FIFO even with deadline boosts, which are above it: a boost landing on this thread's
	// CPU keeps it off for up to a tick (3.9 ms, sched-boost-overrun). A deadline scheduler
	// thread (250 us per 1 ms) kept it ahead, but twice in about 300 matrix runs it and a boosted
	// vCPU thread were both throttled and never replenished (kernel 6.18.44), and the run hung;
	// a FIFO scheduler thread ends a stuck boost at its expiry (sched/README.md).
	if (want) {
		attr = SchedAttr{};
		attr.policy = SCHED_FIFO;
		attr.priority = options_.fifoPriority + 1;
		attr.flags = SCHED_FLAG_RESET_ON_FORK;
	}
	Status s = want ? setSchedAttr(self, attr) : restoreSchedulerThread(self, attr, hostStats_);
	if (!s) {
		// Boosts need the same privilege, so this is rare; they still end, only later.
		schedulerRealtimeFailed_ = true;
		spdlog::warn("scheduler thread cannot run ahead of boosts ({}); a boost may outlast its budget",
			     s.error().message());
		return;
	}
	schedulerRealtime_ = want;
	hostStats_.realtimeSwitches++;
}

} // namespace spindle::sched

#include "sched/thread_states.h"

#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/say_once.h"
#include "sched/pool.h"
#include "sched/switch_observer.h"

namespace spindle::sched {

namespace {
// A kernel tick at HZ=100 is 10 ms; schedstat is exact at every switch and tick.
constexpr uint64_t kMissedStintNs = 12'000'000;
} // namespace

Result<std::unique_ptr<ThreadStates>> ThreadStates::create(SchedulerOptions::ThreadStateSource source,
							   const std::vector<int> &pool)
{
	using S = SchedulerOptions::ThreadStateSource;
	std::unique_ptr<ThreadStates> states(new ThreadStates());
	if (source == S::Proc)
		return states;
	auto online = readOnlineCpus();
	if (!online)
		return online.error();
	auto observer = SwitchObserver::open(pool, *online);
	if (observer) {
		states->switches_ = std::move(*observer);
		return states;
	}
	if (source == S::Switch)
		return observer.error().wrap("--thread-states switch");
	if (firstTimeInProcess("thread-states-proc"))
		spdlog::info("vCPU thread states from /proc (sched:sched_switch events unavailable: {})",
			     observer.error().message());
	return states;
}

ThreadStates::~ThreadStates() = default;

Status ThreadStates::track(pid_t tid)
{
	auto proc = ThreadProcFiles::open(tid);
	if (!proc)
		return proc.error();
	auto sample = proc->sample();
	if (!sample)
		return sample.error();
	// The CPU time of switches counts from now; that of /proc from the thread's start.
	Thread *t = threads_.insert(tid);
	if (!t)
		return Error::invalid("thread id " + std::to_string(tid));
	*t = Thread{ std::move(*proc), switches_ ? 0 : sample->runtimeNs, sample->runtimeNs };
	if (switches_) {
		// A thread attaches itself (from the vCPU thread, before KVM_RUN), so 'R' is running.
		const VcpuState state = sample->state == 'R' ? VcpuState::Running : VcpuState::Halted;
		switches_->tracker().track(tid, state, sample->cpu, monotonicNs());
	}
	return {};
}

void ThreadStates::untrack(pid_t tid)
{
	threads_.erase(tid);
	if (switches_)
		switches_->tracker().untrack(tid);
}

std::vector<ThreadStates::Observation> ThreadStates::observe(std::span<const pid_t> tids)
{
	return switches_ ? observeSwitches(tids) : observeProc(tids);
}

std::vector<ThreadStates::Observation> ThreadStates::observeProc(std::span<const pid_t> tids)
{
	// Telling running from runnable is per CPU, so every thread is read before any is classified.
	std::vector<ClassifyInput> inputs;
	std::vector<size_t> at; // index in tids of each input
	std::vector<Observation> out(tids.size());
	for (size_t k = 0; k < tids.size(); ++k) {
		Thread *t = threads_.find(tids[k]);
		if (!t)
			continue;
		auto sample = t->proc.sample();
		if (!sample)
			continue; // the thread exited; its VM's stop follows
		// With switches, CPU time counts from tracking (the tracker's account, reset from here).
		const uint64_t runtime = sample->runtimeNs - (switches_ ? std::min(t->baseNs, sample->runtimeNs) : 0);
		inputs.push_back({ *sample, runtime - std::min(t->lastRuntimeNs, runtime) });
		t->lastRuntimeNs = runtime;
		at.push_back(k);
	}
	const std::vector<VcpuState> states = classify(inputs);
	const uint64_t now = monotonicNs();
	for (size_t j = 0; j < inputs.size(); ++j) {
		out[at[j]] = { true, states[j], inputs[j].sample.cpu, inputs[j].runtimeDeltaNs };
		if (switches_)
			switches_->tracker().resync(tids[at[j]], states[j], inputs[j].sample.cpu, now,
						    threads_.find(tids[at[j]])->lastRuntimeNs);
	}
	return out;
}

void ThreadStates::reread(pid_t tid, Reread kind, uint64_t nowNs)
{
	Thread *thread = threads_.find(tid);
	if (!thread)
		return;
	SwitchTracker &tracker = switches_->tracker();
	auto view = tracker.view(tid, nowNs);
	if (!view)
		return;
	const uint64_t baseNs = thread->baseNs;
	auto sinceTracking = [baseNs](uint64_t schedstatNs) { return schedstatNs - std::min(baseNs, schedstatNs); };
	// schedstat alone is a fifth of the cost of stat and schedstat together. Most suspects
	// (a lost switch-in, the switch-out seen) only lack CPU time; a check only asks whether the
	// thread used more CPU time than its switches account for (schedstat lags a running thread
	// by at most a kernel tick, well under kMissedStintNs): then a switch-in was lost and
	// nothing has followed it. States are left to the switches where they know them: they tell
	// running from runnable and see a thread going to sleep when it has.
	if (kind == Reread::Check) {
		auto runtime = thread->proc.runtimeNs();
		if (!runtime)
			return; // without schedstat, there is nothing to compare
		if (sinceTracking(*runtime) <= view->runtimeNs + kMissedStintNs) {
			// It adds up. Guessed stints (switch_observer.h) are put right while it is not
			// running, when schedstat is exact.
			if (view->state != VcpuState::Running && tracker.unverifiedNs(tid) > 0)
				tracker.setRuntime(tid, sinceTracking(*runtime), nowNs);
			return;
		}
		fixes_++;
	} else if (kind == Reread::Runtime) {
		if (auto runtime = thread->proc.runtimeNs()) {
			tracker.setRuntime(tid, sinceTracking(*runtime), nowNs);
			return;
		} // without schedstat, the full read below
	}
	auto sample = thread->proc.sample();
	if (!sample)
		return;
	// 'R' is running or runnable, which /proc cannot tell apart: running unless another tracked
	// thread is believed running on that CPU.
	VcpuState state = VcpuState::Halted;
	if (sample->state == 'R') {
		auto other = tracker.runningOn(sample->cpu);
		state = other && *other != tid ? VcpuState::Runnable : VcpuState::Running;
	}
	tracker.resync(tid, state, sample->cpu, nowNs, sinceTracking(sample->runtimeNs));
}

std::vector<ThreadStates::Observation> ThreadStates::observeSwitches(std::span<const pid_t> tids)
{
	if (observerTid_ == 0) {
		observerTid_ = static_cast<pid_t>(syscall(SYS_gettid));
		switches_->tracker().setObserver(observerTid_);
	}
	const SwitchObserver::Drained drained = switches_->drain();
	switchEvents_ += drained.events;
	SwitchTracker &tracker = switches_->tracker();
	if (drained.lost) {
		// Some switches are missing, so any state may be stale: this tick reads /proc for all,
		// and the tracker starts again from what it says.
		resyncs_++;
		return observeProc(tids);
	}
	const uint64_t now = monotonicNs();
	// The threads whose switches did not add up, and one more every kCheckEveryNs in turn: a
	// thread whose lost switch-in is followed by no other switch is found within as many checks
	// as threads. Once per 1 ms tick, the check's two preads were a third of a tick's cost.
	const std::vector<pid_t> suspects = tracker.takeSuspects();
	fixes_ += suspects.size();
	for (pid_t tid : suspects)
		reread(tid, tracker.stateInDoubt(tid) ? Reread::StateAndRuntime : Reread::Runtime, now);
	if (!tids.empty() && now - lastCheckNs_ >= kCheckEveryNs) {
		lastCheckNs_ = now;
		reread(tids[nextCheck_++ % tids.size()], Reread::Check, now);
	}
	std::vector<Observation> out(tids.size());
	for (size_t k = 0; k < tids.size(); ++k) {
		Thread *t = threads_.find(tids[k]);
		auto view = tracker.view(tids[k], now);
		if (!t || !view)
			continue;
		out[k] = { true, view->state, view->cpu, view->runtimeNs - std::min(t->lastRuntimeNs, view->runtimeNs) };
		t->lastRuntimeNs = view->runtimeNs;
	}
	return out;
}

} // namespace spindle::sched

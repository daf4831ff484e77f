#include "sched/scheduler.h"

#include <pthread.h>

#include <sched.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/parse.h"
#include "common/say_once.h"
#include "sched/actuator.h"
#include "sched/core.h"
#include "sched/event_loop.h"
#include "sched/observer.h"
#include "sched/ple.h"
#include "sched/policy.h"
#include "sched/trace.h"
#include "spindle_abi.h"

namespace spindle::sched {

class MonotonicClock : public Clock
{
public:
	uint64_t nowNs() const override { return monotonicNs(); }
};


// ---- Construction ---------------------------------------------------------------------------

Scheduler::Scheduler(SchedulerOptions options, std::vector<int> pool)
	: options_(std::move(options)), pool_(std::move(pool)), clock_(std::make_unique<MonotonicClock>())
{
	// Leave one CPU this process may use free of boosts (see maxConcurrentBoosts).
	cpu_set_t set;
	if (options_.maxConcurrentBoosts == 0 && sched_getaffinity(0, sizeof(set), &set) == 0)
		options_.maxConcurrentBoosts = static_cast<uint32_t>(std::max(CPU_COUNT(&set) - 1, 1));
	core_ = std::make_unique<SchedCore>(options_, pool_, *clock_);
	wakeOnReports_.store(core_->answersSpins(), std::memory_order_relaxed);
	actuator_ = std::make_unique<HostActuator>(options_.boostClass, options_.fifoPriority);
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(SchedulerOptions options, std::vector<int> poolCpus)
{
	Status valid = validateOptions(options);
	if (!valid)
		return valid.error();
	auto pool = checkPoolCpus(std::move(poolCpus));
	if (!pool)
		return pool.error().wrap("scheduler pool");

	std::unique_ptr<Scheduler> s(new Scheduler(std::move(options), std::move(*pool)));
	auto states = ThreadStates::create(s->options_.threadStates, s->pool_);
	if (!states)
		return states.error();
	s->threadStates_ = std::move(*states);
	s->notifyFd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	s->stopFd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	if (!s->notifyFd_.isValid() || !s->stopFd_.isValid())
		return Error::fromErrno("creating the scheduler's eventfds");
	auto timers = TickTimers::create();
	if (!timers)
		return timers.error();
	s->timers_.emplace(std::move(*timers));

	if (!s->options_.tracePath.empty()) {
		auto trace = TraceWriter::open(s->options_.tracePath, s->options_.traceFormat);
		if (!trace)
			return trace.error();
		s->trace_ = std::move(*trace);
		s->core_->enableTrace(true);
	}

	// The pattern detector classifies the same PAUSE-exit counts, so either needs the counters.
	if (s->options_.detectPle || s->options_.detectPattern) {
		if (!s->options_.pleUnavailableReason.empty()) {
			s->notePleOff(s->options_.pleUnavailableReason);
		} else {
			auto id = kvmExitTracepointId();
			auto filter = pauseExitFilter(hostCpuVendor());
			if (id && filter) {
				s->pleTracepoint_ = *id;
				s->pleFilter_ = *filter;
				s->pleAvailable_ = true;
			} else {
				s->notePleOff(id ? filter.error().message() : id.error().message());
			}
		}
	}
	// Sampling joins in by default exactly where no PAUSE exit can be seen.
	s->samplingOn_ = s->options_.detectSample || (s->options_.sampleWherePauseNeverExits && !s->pleAvailable_);
	return s;
}

void Scheduler::notePleOff(const std::string &reason) const
{
	// Once per process (a bench matrix meets it in every run). It matters to the policies that
	// react to spins; to the others it is a fact about the host.
	if (!firstTimeInProcess("ple-detector-off"))
		return;
	if (policyReactsToSpins(options_.policy))
		spdlog::warn("PLE detector off: {}; {} reacts to the other spin detectors (PV long-spin "
			     "notifications, hints)",
			     reason, policyName(options_.policy));
	else
		spdlog::info("PLE detector off: {}", reason);
}

Scheduler::~Scheduler()
{
	stop();
}

// ---- Configuration --------------------------------------------------------------------------

Result<int> Scheduler::addVm(std::string name, unsigned vcpuCount, const volatile spindle_hint_slot *hints,
			     const sampling::SamplingTarget *sampling)
{
	std::lock_guard lock(mutex_);
	if (vcpuCount == 0 || vcpuCount > SPINDLE_MAX_VCPUS || core_->vmCount() >= static_cast<size_t>(kMaxVms))
		return Error::invalid("the scheduler takes at most " + std::to_string(kMaxVms) + " VMs of 1-" +
				      std::to_string(SPINDLE_MAX_VCPUS) + " vCPUs");
	if (trace_)
		trace_->describeVm(static_cast<int>(core_->vmCount()), name, vcpuCount);
	int vm = core_->addVm(std::move(name), vcpuCount, options_.detectHints ? hints : nullptr);
	host_.emplace_back(vcpuCount);
	samplingTargets_.push_back(sampling);
	auto pv = std::make_unique<PvVm>();
	pv->vcpus = vcpuCount;
	pv->slots.reset(new PvSlot[vcpuCount]);
	pv_[static_cast<size_t>(vm)].store(pv.get(), std::memory_order_release);
	pvOwned_.push_back(std::move(pv));
	return vm;
}

Status Scheduler::attachVcpuThread(int vm, unsigned vcpu, pid_t tid)
{
	std::lock_guard lock(mutex_);
	if (!core_->valid({ vm, vcpu }) || !core_->vm(vm).active)
		return Error::invalid("attachVcpuThread: no vCPU " + std::to_string(vcpu) + " in VM " + std::to_string(vm));
	HostVcpu &h = host(vm, vcpu);
	if (h.tid != 0)
		return Error(EEXIST, "attachVcpuThread: vCPU " + std::to_string(vcpu) + " already has a thread");
	Status s = actuator_->track(tid, core_->vcpu({ vm, vcpu }).homeCpu);
	if (!s)
		return s.error().wrap("attaching vCPU " + std::to_string(vcpu));
	// After the pinning, so the thread's first observed CPU is its home.
	if (Status t = threadStates_->track(tid); !t) {
		(void)actuator_->untrack(tid);
		return t.error().wrap("attaching vCPU " + std::to_string(vcpu));
	}
	h = HostVcpu{};
	h.tid = tid;
	threadsAttached_++;
	if (samplingOn_ && samplingTargets_[static_cast<size_t>(vm)]) {
		sampling::SamplingConfig config;
		config.rateHz = options_.sampleRateHz;
		config.history.window = options_.sampleWindow;
		config.history.spinLow = options_.sampleLow;
		config.history.spinHigh = options_.sampleHigh;
		auto sampler = sampling::VcpuSampler::open(tid, config);
		if (sampler) {
			h.sampler = std::move(*sampler);
		} else {
			if (firstTimeInProcess("sampling-detector-off"))
				spdlog::warn("sampling spin detector off: {} (it needs root or CAP_PERFMON)",
					     sampler.error().message());
			samplingOn_ = false;
		}
	}
	if (pleAvailable_) {
		auto counter = PleCounter::open(tid, pleTracepoint_, pleFilter_);
		if (counter) {
			h.ple = std::make_unique<PleCounter>(std::move(*counter));
		} else {
			notePleOff(counter.error().message());
			pleAvailable_ = false;
		}
	}
	return {};
}

void Scheduler::detachVcpuThread(int vm, unsigned vcpu)
{
	std::lock_guard lock(mutex_);
	if (!core_->valid({ vm, vcpu }))
		return;
	HostVcpu &h = host(vm, vcpu);
	if (h.tid == 0)
		return;
	// The model stops steering it; what that emits is dropped with the tid below.
	if (core_->vcpu({ vm, vcpu }).boosted)
		core_->endBoost({ vm, vcpu }, false);
	core_->vcpuState({ vm, vcpu }, VcpuState::Halted, -1);
	(void)actuator_->untrack(h.tid);
	threadStates_->untrack(h.tid);
	h = HostVcpu{};
	applyLocked();
}

void Scheduler::notifyLongSpin(int vm, unsigned vcpu, uint32_t waitsOn, uint32_t lockId)
{
	if (vm < 0 || vm >= kMaxVms)
		return;
	PvVm *pv = pv_[static_cast<size_t>(vm)].load(std::memory_order_acquire);
	if (!pv || vcpu >= pv->vcpus)
		return;
	PvSlot &slot = pv->slots[vcpu];
	slot.latest.store(static_cast<uint64_t>(waitsOn) << 32 | lockId, std::memory_order_relaxed);
	// Only the first pending notification wakes the scheduler: a flooding guest costs one
	// atomic add per notification, not a system call. And the scheduler is woken at most once
	// per kMinNotifyWakeNs: a flood then costs it a bounded number of wake-ups, while the first
	// notification after a quiet spell still wakes it at once; what a skipped wake leaves
	// pending is drained by the next wake or the next tick.
	if (slot.pending.fetch_add(1, std::memory_order_release) == 0 &&
	    wakeOnReports_.load(std::memory_order_relaxed)) {
		const uint64_t now = monotonicNs();
		uint64_t last = lastNotifyWakeNs_.load(std::memory_order_relaxed);
		if (now - last >= kMinNotifyWakeNs && lastNotifyWakeNs_.compare_exchange_strong(last, now)) {
			uint64_t one = 1;
			ssize_t n = ::write(notifyFd_.get(), &one, sizeof(one));
			(void)n; // EAGAIN means the counter is already non-zero: the scheduler will wake
		}
	}
}

void Scheduler::vmStopped(int vm)
{
	std::lock_guard lock(mutex_);
	if (vm < 0 || static_cast<size_t>(vm) >= core_->vmCount())
		return;
	pv_[static_cast<size_t>(vm)].store(nullptr, std::memory_order_release);
	core_->removeVm(vm);
	applyLocked();
	for (HostVcpu &h : host_[static_cast<size_t>(vm)]) {
		if (h.tid != 0) {
			Status s = actuator_->untrack(h.tid);
			if (!s && s.error().code() != ESRCH)
				spdlog::warn("restoring a stopped VM's thread: {}", s.error().message());
			threadStates_->untrack(h.tid);
		}
		h = HostVcpu{};
	}
}

// ---- The scheduler thread -------------------------------------------------------------------

Status Scheduler::start()
{
	if (running_.load())
		return Error(EALREADY, "scheduler already started");
	if (Status s = timers_->setTickPeriod(options_.tickNs); !s)
		return s;

	auto loop = EventLoop::create(options_.forceEpoll);
	if (!loop)
		return loop.error();
	std::shared_ptr<EventLoop> shared(std::move(*loop));
	backend_ = shared->backend();
	auto drain = [](int fd) {
		uint64_t value;
		ssize_t n = ::read(fd, &value, sizeof(value));
		(void)n;
	};
	for (auto [fd, handler] : { std::pair<int, std::function<void()>>{ timers_->tickFd(), [this] { onTick(); } },
				   { timers_->expiryFd(), [this] { onExpiry(); } },
				   { notifyFd_.get(), [this] { onNotify(); } },
				   { stopFd_.get(), [] {} } }) {
		int f = fd;
		std::function<void()> h = handler;
		Status s = shared->add(f, [f, h, drain] {
			drain(f);
			h();
		});
		if (!s)
			return s;
	}
	running_.store(true);
	thread_ = std::thread([this, shared] {
		pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
		pthread_setname_np(pthread_self(), "spindle-sched"); // what top and perf show
		auto original = getSchedAttr(self);
		if (original) {
			schedulerOriginal_ = *original;
			schedulerTid_.store(self, std::memory_order_release);
		}
		if (threadStartHook_)
			threadStartHook_();
		while (running_.load(std::memory_order_acquire)) {
			Status s = shared->runOnce(-1);
			if (!s) {
				spdlog::error("scheduler event loop: {}", s.error().message());
				break;
			}
		}
		// A stop while boosts run ends the loop at SCHED_FIFO: leave as it came, checked, and
		// let nobody raise it again (keepAheadOfBoostsLocked skips a tid of 0).
		std::lock_guard lock(mutex_);
		if (schedulerRealtime_ && !schedulerRealtimeFailed_) {
			(void)restoreSchedulerThread(self, schedulerOriginal_, hostStats_);
			schedulerRealtime_ = false;
			hostStats_.realtimeSwitches++;
		}
		schedulerTid_.store(0, std::memory_order_release);
	});
	return {};
}

void Scheduler::stop()
{
	if (running_.exchange(false)) {
		uint64_t one = 1;
		ssize_t n = ::write(stopFd_.get(), &one, sizeof(one));
		(void)n;
	}
	if (thread_.joinable())
		thread_.join();
	std::lock_guard lock(mutex_);
	for (size_t vm = 0; vm < core_->vmCount(); ++vm)
		core_->removeVm(static_cast<int>(vm));
	core_->takeActions(); // the restore below supersedes them
	actuator_->restoreAll();
	for (auto &vm : host_)
		for (HostVcpu &h : vm) {
			if (h.tid != 0)
				threadStates_->untrack(h.tid);
			h.tid = 0;
		}
	// Said once per process (stop() may run again, a bench matrix runs many schedulers).
	const uint64_t mismatches = hostStats_.restoreMismatches + actuator_->restoreMismatches();
	if (mismatches && firstTimeInProcess("restore-mismatch"))
		spdlog::warn("{} thread restore(s) read back a scheduling state other than the recorded one "
			     "(restore_mismatches in --metrics)",
			     mismatches);
	if (trace_)
		trace_->flush();
}

void Scheduler::finishLocked()
{
	applyLocked();
	armExpiryLocked();
	paceTickLocked();
}

void Scheduler::armExpiryLocked() { timers_->armExpiry(core_->nextExpiryNs()); }

void Scheduler::paceTickLocked()
{
	wakeOnReports_.store(core_->answersSpins(), std::memory_order_relaxed);
	// A failed re-arm keeps the timer as it is, and is tried again at the next event.
	const uint64_t turnEnds = core_->turnEndsNs();
	if (turnEnds != 0) {
		// Once per turn: the next tick at its end, the fast tick after that until the next
		// turn aligns it again (a policy with nobody ready for a turn polls as before).
		if (pace_ == TickPace::Turns && turnEnds == pacedTurnEndsNs_)
			return;
		if (!timers_->alignTick(turnEnds, options_.tickNs))
			return;
		if (pace_ != TickPace::Turns && trace_)
			trace_->record({ clock_->nowNs(), "turn_tick", { 0, 0 }, "scheduler", turnEnds - std::min(turnEnds, clock_->nowNs()) });
		pace_ = TickPace::Turns;
		pacedTurnEndsNs_ = turnEnds;
		return;
	}
	const TickPace pace =
		options_.quietTickNs > options_.tickNs && core_->quietTickAllowed() ? TickPace::Quiet : TickPace::Fast;
	backoff_.afterEvent(core_->activity()); // a spin or boost since the last tick: fast again
	const uint64_t period = pace == TickPace::Quiet ? options_.quietTickNs : backoff_.periodNs();
	if (pace == pace_ && period == timers_->tickPeriodNs())
		return;
	if (!timers_->setTickPeriod(period))
		return;
	const bool paceChanged = pace != pace_;
	pace_ = pace;
	if (trace_ && paceChanged)
		trace_->record({ clock_->nowNs(), pace == TickPace::Quiet ? "quiet_tick" : "fast_tick", { 0, 0 }, "scheduler", period });
}

void Scheduler::tickNow()
{
	onTick();
}

void Scheduler::reportSpin(int vm, unsigned vcpu)
{
	std::lock_guard lock(mutex_);
	if (statesStaleLocked())
		observeLocked(); // the states are up to a quiet tick, a backed-off tick or a turn old
	core_->spinDetected({ vm, vcpu }, SpinSource::Ple);
	finishLocked();
}

void Scheduler::onTick()
{
	std::lock_guard lock(mutex_);
	ticks_++;
	quietTicks_ += pace_ == TickPace::Quiet ? 1 : 0;
	turnTicks_ += pace_ == TickPace::Turns ? 1 : 0;
	backedOffTicks_ += pace_ == TickPace::Fast && timers_->tickPeriodNs() > options_.tickNs ? 1 : 0;
	observeLocked();
	drainNotificationsLocked(); // what a rate-limited or skipped wake left pending, on fresh states
	core_->tick();
	backoff_.afterTick(core_->activity());
	finishLocked();
}

void Scheduler::observeLocked()
{
	const uint64_t now = clock_->nowNs();
	const uint64_t sinceLast = lastObservedNs_ ? now - lastObservedNs_ : options_.tickNs;
	lastObservedNs_ = now;
	// Observe every attached thread together: telling running from runnable is per CPU.
	std::vector<pid_t> &tids = observeTids_; // kept: a tick allocates nothing
	std::vector<VcpuId> &who = observeWho_;
	tids.clear();
	who.clear();
	for (size_t vm = 0; vm < host_.size(); ++vm)
		for (unsigned i = 0; i < host_[vm].size(); ++i)
			if (host_[vm][i].tid != 0) {
				tids.push_back(host_[vm][i].tid);
				who.push_back({ static_cast<int>(vm), i });
			}
	const std::vector<ThreadStates::Observation> seen = threadStates_->observe(tids);
	for (size_t k = 0; k < who.size(); ++k) {
		if (!seen[k].present)
			continue; // the thread exited; vmStopped will follow
		core_->vcpuState(who[k], seen[k].state, seen[k].cpu);
		core_->cpuTime(who[k], seen[k].runtimeDeltaNs);
	}

	for (size_t vm = 0; vm < host_.size(); ++vm)
		for (unsigned i = 0; i < host_[vm].size(); ++i)
			if (host_[vm][i].ple) {
				auto delta = host_[vm][i].ple->readDelta();
				if (delta)
					core_->pauseExits({ static_cast<int>(vm), i }, pauseExitsPerTick(*delta, sinceLast, options_.tickNs),
							  sinceLast > options_.tickNs ? *delta : 0);
			}

	drainSamplesLocked();
}

void Scheduler::drainSamplesLocked()
{
	for (size_t vm = 0; vm < host_.size(); ++vm) {
		const sampling::SamplingTarget *target = samplingTargets_[vm];
		for (unsigned i = 0; i < host_[vm].size(); ++i) {
			HostVcpu &h = host_[vm][i];
			if (!h.sampler || !target)
				continue;
			if (core_->vm(static_cast<int>(vm)).reportsSpins) {
				// Its samples would only interrupt it: each one taken from a lock holder
				// lengthens a wait past the guest's spin threshold into another report.
				h.sampler.reset();
				samplersStopped_++;
				continue;
			}
			const VcpuId who{ static_cast<int>(vm), i };
			const sampling::DrainResult drained = h.sampler->drain(*target, i);
			if (drained.samples == 0)
				continue;
			core_->sampled(who, drained.samples, drained.hints.cpl, drained.hints.likelyHoldsLock);
			if (drained.report)
				core_->spinDetected(who, SpinSource::Sampled);
		}
	}
}

void Scheduler::onExpiry()
{
	std::lock_guard lock(mutex_);
	timers_->expiryFired();
	core_->expire();
	finishLocked();
}

void Scheduler::onNotify()
{
	std::lock_guard lock(mutex_);
	if (statesStaleLocked())
		observeLocked(); // answer the first spin after a quiet spell with fresh states
	drainNotificationsLocked();
	finishLocked();
}

void Scheduler::drainNotificationsLocked()
{
	for (size_t vm = 0; vm < static_cast<size_t>(kMaxVms); ++vm) {
		PvVm *pv = pv_[vm].load(std::memory_order_acquire);
		if (!pv)
			continue;
		for (unsigned i = 0; i < pv->vcpus; ++i) {
			uint32_t n = pv->slots[i].pending.exchange(0, std::memory_order_acquire);
			if (n == 0)
				continue;
			uint64_t latest = pv->slots[i].latest.load(std::memory_order_relaxed);
			core_->longSpin({ static_cast<int>(vm), i }, static_cast<uint32_t>(latest >> 32),
					static_cast<uint32_t>(latest), n);
		}
	}
}

SchedulerMetrics Scheduler::metrics() const
{
	std::lock_guard lock(mutex_);
	HostBoostStats host = hostStats_; // the scheduler thread's restores; the vCPU threads' follow
	host.restores += actuator_->restores();
	host.restoreMismatches += actuator_->restoreMismatches();
	host.alarmEnds = actuator_->alarmEnds();
	HostMetrics hostMetrics{ backend_, pleAvailable_, actuator_->fifoFallbackUsed(), threadStates_->sourceName(),
				 threadStates_->switchEvents(), threadStates_->resyncs(), threadStates_->fixes(), ticks_, quietTicks_, turnTicks_, backedOffTicks_, threadsAttached_, samplersStopped_, actuationErrors_, host };
	return { core_->metrics(), std::move(hostMetrics) };
}

void Scheduler::writeMetricsJson(std::string &out) const
{
	JsonWriter json(out);
	writeJson(json, metrics());
}

} // namespace spindle::sched

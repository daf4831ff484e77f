#include "sched/policy.h"

#include <algorithm>

namespace spindle::sched {

// ---- yield ----------------------------------------------------------------------------------

// Stock Xen gives up the spinning vCPU's CPU on a PLE exit. One thread cannot make another one
// yield, and pushing the spinner into SCHED_IDLE backfires under CFS: what it still runs there is
// charged to its vruntime at weight 3 instead of 1024 (about 340x), so once "restored" CFS holds
// it back far longer than the yield lasted. That starved whole vCPUs for entire runs in the KVM
// suite. So the yield is done from the other side: the runnable vCPUs (of any VM) stacked on the
// spinner's CPU are boosted for yieldNs. The spinner's own vruntime is untouched, the time is the
// spinner's donation (not debited to the takers), and the interval bounds how often it donates.
void YieldPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t)
{
	VcpuModel &v = core.vcpu(spinner);
	const uint64_t t = core.now();
	if (v.yielded && t - v.lastYieldNs < core.options().yieldMinIntervalNs) {
		core.countDenied(spinner, "yield_interval");
		return;
	}
	unsigned takers = 0;
	for (size_t id = 0; id < core.vmCount(); ++id) {
		VmModel &m = core.vm(static_cast<int>(id));
		if (!m.active)
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i) {
			const VcpuId other{ static_cast<int>(id), i };
			const VcpuModel &o = m.vcpus[i];
			if (other == spinner || o.state != VcpuState::Runnable || o.boosted || o.cpu != v.cpu)
				continue;
			if (core.grantBoost(other, core.options().yieldNs, BoostReason::Yield, false))
				++takers;
		}
	}
	if (takers == 0) {
		core.traceEvent("yield_no_taker", spinner, "cpu", static_cast<uint64_t>(v.cpu));
		return;
	}
	v.yielded = true;
	v.lastYieldNs = t;
	v.counters.yields++;
}

// ---- coboost --------------------------------------------------------------------------------

void CoboostPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t)
{
	coboost(core, spinner, core.options().boostSliceNs);
}

unsigned CoboostPolicy::coboost(SchedCore &core, VcpuId spinner, uint64_t sliceNs)
{
	VmModel &m = core.vm(spinner.vm);
	if (m.coboostOutstanding > 0) {
		m.counters.coboostsInFlight++;
		core.countDenied(spinner, "coboost_in_flight");
		return 0;
	}

	// CPUs on which a sibling runs now; a boosted sibling will run on its target, so targets
	// chosen in this round count as taken too.
	std::vector<int> busy;
	for (const VcpuModel &s : m.vcpus)
		if (s.state == VcpuState::Running && s.cpu >= 0)
			busy.push_back(s.cpu);
	auto isBusy = [&](int cpu) { return std::find(busy.begin(), busy.end(), cpu) != busy.end(); };

	unsigned boosted = 0;
	for (unsigned i = 0; i < m.vcpus.size(); ++i) {
		VcpuId sibling{ spinner.vm, i };
		VcpuModel &s = m.vcpus[i];
		// The spinner is not yielded, and running or halted siblings need no CPU from us.
		if (i == spinner.vcpu || s.state != VcpuState::Runnable || s.boosted)
			continue;
		int onCpu = -1;
		if (s.cpu >= 0 && isBusy(s.cpu)) {
			// Stacked behind a running sibling: boosting it in place would preempt that
			// sibling (possibly the holder). Boost it on a pool CPU that runs none.
			for (int cpu : core.poolCpus()) {
				if (!isBusy(cpu)) {
					onCpu = cpu;
					break;
				}
			}
		}
		if (core.grantBoost(sibling, sliceNs, BoostReason::Coboost, true, onCpu)) {
			if (s.cpu >= 0)
				busy.push_back(s.cpu);
			++boosted;
		}
	}
	if (boosted > 0) {
		m.coboostOutstanding = boosted;
		m.coboostStartNs = core.now();
		m.spinsAtCoboost = m.spinsTotal;
		m.counters.coboosts++;
	}
	return boosted;
}

void CoboostPolicy::onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool)
{
	VmModel &m = core.vm(who.vm);
	if (reason == BoostReason::Coboost && m.coboostOutstanding > 0)
		--m.coboostOutstanding;
}

// ---- extend ---------------------------------------------------------------------------------

bool ExtendPolicy::tryExtend(SchedCore &core, VcpuId who)
{
	VcpuModel &v = core.vcpu(who);
	if (v.locksHeld == 0 || v.extendedThisHold || v.boosted || v.state != VcpuState::Running)
		return false;
	const SchedulerOptions &o = core.options();
	uint64_t t = core.now();
	if (t - v.extendWindowStartNs >= o.extendWindowNs) {
		v.extendWindowStartNs = t;
		v.extendsInWindow = 0;
	}
	if (v.extendsInWindow >= o.extendMaxPerWindow) {
		core.countDenied(who, "extend_count");
		v.extendedThisHold = true; // do not ask again for this hold
		return false;
	}
	if (!core.grantBoost(who, o.extendMaxNs, BoostReason::Extend, true))
		return false;
	v.extendsInWindow++;
	v.extendedThisHold = true;
	v.counters.extensionsGranted++;
	return true;
}

void ExtendPolicy::onHint(SchedCore &core, VcpuId who)
{
	VcpuModel &v = core.vcpu(who);
	if (v.locksHeld == 0) {
		// Released: the extension has done its job, give the rest back.
		if (v.boosted && v.boostReason == BoostReason::Extend) {
			v.counters.extensionsEndedEarly++;
			core.endBoost(who, true);
		}
		return;
	}
	tryExtend(core, who);
}

void ExtendPolicy::onTick(SchedCore &core)
{
	// A holder that was runnable when its hint changed may be running now.
	for (size_t id = 0; id < core.vmCount(); ++id) {
		VmModel &m = core.vm(static_cast<int>(id));
		if (!m.active)
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i)
			if (m.vcpus[i].locksHeld > 0)
				tryExtend(core, { static_cast<int>(id), i });
	}
}

// ---- express --------------------------------------------------------------------------------

bool ExpressPolicy::express(SchedCore &core, VcpuId target)
{
	VcpuModel &v = core.vcpu(target);
	// Only a de-scheduled vCPU needs express scheduling; a halted one holds no spinlock.
	if (v.state != VcpuState::Runnable || v.boosted)
		return false;
	uint64_t t = core.now();
	if (v.expressed && t - v.lastExpressNs < core.options().expressMinIntervalNs) {
		core.countDenied(target, "express_interval");
		return false;
	}
	if (!core.grantBoost(target, core.options().expressNs, BoostReason::Express, true))
		return false;
	v.expressed = true;
	v.lastExpressNs = t;
	v.counters.expressRuns++;
	return true;
}

void ExpressPolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t waitsOn)
{
	if (waitsOn == kNoVcpu)
		return;
	express(core, { spinner.vm, waitsOn });
}

void ExpressPolicy::retryWaiters(SchedCore &core, int vm)
{
	// A waiter whose hint still names a de-scheduled vCPU: the first attempt may have been
	// refused by a bound that has passed since.
	VmModel &m = core.vm(vm);
	if (!m.active)
		return;
	for (const VcpuModel &v : m.vcpus)
		if (v.waitingOn != kNoVcpu && m.vcpus[v.waitingOn].state == VcpuState::Runnable &&
		    !m.vcpus[v.waitingOn].boosted)
			express(core, { vm, v.waitingOn });
}

void ExpressPolicy::onTick(SchedCore &core)
{
	for (size_t id = 0; id < core.vmCount(); ++id)
		retryWaiters(core, static_cast<int>(id));
}

// ---- gang -----------------------------------------------------------------------------------

bool GangPolicy::takesTurns(const SchedCore &core, int vm) const
{
	const VmModel &m = core.vm(vm);
	if (!m.active)
		return false;
	return rotation_ == Rotation::EveryActiveVm || m.readyVcpus() > 0;
}

void GangPolicy::onTick(SchedCore &core)
{
	uint64_t t = core.now();
	size_t pool = core.poolCpus().size();

	// Holes since the last tick: pool CPUs that the VM in turn had no runnable vCPU for.
	if (current_ >= 0 && lastTickNs_ != 0) {
		const VmModel &m = core.vm(current_);
		size_t ready = 0;
		for (const VcpuModel &v : m.vcpus)
			if (v.state != VcpuState::Halted)
				++ready;
		if (ready < pool)
			core.vm(current_).counters.gangHoleCpuNs += (pool - ready) * (t - lastTickNs_);
	}
	lastTickNs_ = t;

	if (current_ >= 0 && t < turnEndsNs_ && core.vm(current_).active)
		return;

	// Next active VM in turn.
	int count = static_cast<int>(core.vmCount());
	int next = -1;
	for (int step = 1; step <= count; ++step) {
		int candidate = ((current_ < 0 ? -1 : current_) + step) % count;
		if (takesTurns(core, candidate)) {
			next = candidate;
			break;
		}
	}
	if (next < 0)
		return;

	uint64_t quantum = core.options().gangQuantumNs;
	for (int id = 0; id < count; ++id) {
		VmModel &m = core.vm(id);
		if (!m.active)
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i) {
			VcpuId who{ id, i };
			if (id == next) {
				core.restorePriority(who);
				if (m.vcpus[i].boosted)
					core.endBoost(who, false);
				// A turn is the VM's entitlement, not a favour: not debited.
				core.grantBoost(who, quantum, BoostReason::Gang, false);
			} else {
				if (m.vcpus[i].boosted)
					core.endBoost(who, false);
				core.deprioritize(who, quantum);
			}
		}
	}
	current_ = next;
	turnEndsNs_ = t + quantum;
	core.vm(next).counters.gangTurns++;
	core.traceEvent("gang_turn", { next, 0 }, core.vm(next).name.c_str(), quantum);
}

// ---- adaptive -------------------------------------------------------------------------------

AdaptivePolicy::AdaptivePolicy(const SchedulerOptions &options) : options_(options) {}

AdaptivePolicy::VmState &AdaptivePolicy::state(int vm)
{
	while (vms_.size() <= static_cast<size_t>(vm))
		vms_.push_back({ std::clamp(options_.boostSliceNs, options_.adaptMinSliceNs, options_.adaptMaxSliceNs) });
	return vms_[static_cast<size_t>(vm)];
}

uint64_t AdaptivePolicy::sliceNs(int vm) const
{
	if (vm >= 0 && static_cast<size_t>(vm) < vms_.size())
		return vms_[static_cast<size_t>(vm)].sliceNs;
	return std::clamp(options_.boostSliceNs, options_.adaptMinSliceNs, options_.adaptMaxSliceNs);
}

bool AdaptivePolicy::vmSpinsRecently(const SchedCore &core, int vm) const
{
	const VmModel &m = core.vm(vm);
	return m.spunEver && core.now() - m.lastSpinNs <= kSpinMemoryTicks * options_.tickNs;
}

AdaptivePolicy::Response AdaptivePolicy::response(int vm) const
{
	if (vm >= 0 && static_cast<size_t>(vm) < vms_.size())
		return vms_[static_cast<size_t>(vm)].response;
	return Response::Express;
}

void AdaptivePolicy::answerNamed(SchedCore &core, VcpuId spinner, uint32_t target)
{
	if (state(spinner.vm).response == Response::Express)
		express_.express(core, { spinner.vm, target });
	else
		coboost_.coboost(core, spinner, state(spinner.vm).sliceNs); // the target is among them
}

void AdaptivePolicy::onSpin(SchedCore &core, VcpuId spinner, SpinSource, uint32_t waitsOn)
{
	if (turnsActive_)
		return; // the VM's turn co-schedules it; between turns it waits by design
	// 1. A named vCPU (holder or next waiter).
	if (waitsOn != kNoVcpu) {
		answerNamed(core, spinner, waitsOn);
		return;
	}
	// 2. Hints name a holder that is not running: that is the one to run.
	VmModel &m = core.vm(spinner.vm);
	for (unsigned i = 0; i < m.vcpus.size(); ++i) {
		const VcpuModel &v = m.vcpus[i];
		if (i != spinner.vcpu && v.locksHeld > 0 && v.state == VcpuState::Runnable) {
			answerNamed(core, spinner, i);
			return;
		}
	}
	// 3. Only a spin is known: co-boost the siblings, with this VM's adapted slice.
	coboost_.coboost(core, spinner, state(spinner.vm).sliceNs);
}

void AdaptivePolicy::endEpoch(SchedCore &core, int vm)
{
	VmState &s = state(vm);
	const VmModel &m = core.vm(vm);
	const uint64_t t = core.now();
	const uint64_t elapsed = t - s.epochStartNs;
	const double rate = static_cast<double>(m.hintProgress - s.progressAtEpoch) * 1e6 /
			    static_cast<double>(std::max<uint64_t>(elapsed, 1));
	double &average = s.rate[static_cast<unsigned>(s.response)];
	average = average < 0 ? rate : (average + rate) / 2;
	s.epochs++;
	s.epochStartNs = t;
	s.progressAtEpoch = m.hintProgress;

	const Response other = s.response == Response::Express ? Response::Coboost : Response::Express;
	Response next;
	if (s.rate[static_cast<unsigned>(other)] < 0 || s.epochs % kExploreEvery == 0)
		next = other; // not tried yet, or time to look again
	else
		next = s.rate[0] >= s.rate[1] ? Response::Express : Response::Coboost;
	if (next != s.response)
		core.traceEvent("adapt_response", { vm, 0 }, next == Response::Express ? "express" : "coboost",
				static_cast<uint64_t>(rate));
	s.response = next;
}

void AdaptivePolicy::onTick(SchedCore &core)
{
	updateTurns(core);
	if (turnsActive_) {
		gang_.onTick(core);
		return;
	}
	const uint64_t t = core.now();
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const int vm = static_cast<int>(id);
		VmModel &m = core.vm(vm);
		if (!m.active)
			continue;
		// Epochs count only while the VM spins and publishes hints (the progress signal).
		VmState &s = state(vm);
		if (m.hints == nullptr || !vmSpinsRecently(core, vm)) {
			s.epochStartNs = t;
			s.progressAtEpoch = m.hintProgress;
		} else if (t - s.epochStartNs >= kEpochTicks * options_.tickNs) {
			endEpoch(core, vm);
		}
		if (!vmSpinsRecently(core, vm))
			continue;
		for (unsigned i = 0; i < m.vcpus.size(); ++i)
			if (m.vcpus[i].locksHeld > 0)
				extend_.tryExtend(core, { vm, i });
		if (s.response == Response::Express)
			express_.retryWaiters(core, vm);
	}
}

bool AdaptivePolicy::turnsWanted(const SchedCore &core) const
{
	const size_t pool = core.poolCpus().size();
	bool anySpins = false;
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const VmModel &m = core.vm(static_cast<int>(id));
		if (!m.active)
			continue;
		// Larger than the pool: FIFO vCPUs stacked on one CPU never time-share.
		if (m.vcpus.size() > pool)
			return false;
		if (!vmSpinsRecently(core, static_cast<int>(id)))
			continue; // a quiet VM's holes are filled by the waiting VMs' SCHED_IDLE threads
		anySpins = true;
		// A spinning VM with fewer ready vCPUs than CPUs: its turn would leave holes, and its
		// vCPUs that wake would wait for the next turn (measured: a VM that halts half the
		// time gets 0.83x of cfs's lock throughput under gang).
		if (m.readyVcpus() < pool)
			return false;
	}
	return anySpins && core.vmCount() > 1;
}

void AdaptivePolicy::endTurns(SchedCore &core)
{
	for (size_t id = 0; id < core.vmCount(); ++id) {
		VmModel &m = core.vm(static_cast<int>(id));
		for (unsigned i = 0; i < m.vcpus.size(); ++i) {
			VcpuId who{ static_cast<int>(id), i };
			if (m.vcpus[i].boosted && m.vcpus[i].boostReason == BoostReason::Gang)
				core.endBoost(who, false);
			if (m.vcpus[i].deprioritized)
				core.restorePriority(who);
		}
	}
	gang_ = GangPolicy(GangPolicy::Rotation::VmsWithAReadyVcpu);
}

void AdaptivePolicy::updateTurns(SchedCore &core)
{
	const bool want = turnsWanted(core);
	turnTicks_ = want == turnsActive_ ? 0 : turnTicks_ + 1;
	if (turnTicks_ < kTurnHysteresisTicks)
		return;
	turnTicks_ = 0;
	turnsActive_ = want;
	core.traceEvent(want ? "turns_start" : "turns_end", { 0, 0 }, "adaptive", 0);
	if (!want)
		endTurns(core);
}

void AdaptivePolicy::onHint(SchedCore &core, VcpuId who)
{
	if (turnsActive_)
		return; // turns co-schedule holders already; an extension would break a turn
	// Extensions cost the other VMs CPU; grant them only where spin waits happen.
	VcpuModel &v = core.vcpu(who);
	if (v.locksHeld == 0 || vmSpinsRecently(core, who.vm))
		extend_.onHint(core, who);
}

void AdaptivePolicy::onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool early)
{
	if (reason != BoostReason::Coboost)
		return;
	VmModel &m = core.vm(who.vm);
	bool lastOfRound = m.coboostOutstanding == 1;
	coboost_.onBoostEnded(core, who, reason, early);
	if (!lastOfRound)
		return;
	// Progress: no spin wait was reported in the VM after the round started. Few rounds with
	// progress: the holder needs longer, double the slice; most with progress: try cheaper.
	VmState &s = state(who.vm);
	s.rounds++;
	if (m.spinsTotal == m.spinsAtCoboost)
		s.progressed++;
	if (s.rounds < kAdaptRounds)
		return;
	if (s.progressed * 4 < s.rounds)
		s.sliceNs = std::min(s.sliceNs * 2, options_.adaptMaxSliceNs);
	else if (s.progressed * 4 > s.rounds * 3)
		s.sliceNs = std::max(s.sliceNs * 3 / 4, options_.adaptMinSliceNs);
	core.traceEvent("adapt_slice", { who.vm, 0 }, "coboost", s.sliceNs);
	s.rounds = 0;
	s.progressed = 0;
}

std::unique_ptr<Policy> makePolicy(const SchedulerOptions &options)
{
	switch (options.policy) {
	case PolicyKind::Cfs: return std::make_unique<CfsPolicy>();
	case PolicyKind::Yield: return std::make_unique<YieldPolicy>();
	case PolicyKind::Coboost: return std::make_unique<CoboostPolicy>();
	case PolicyKind::Extend: return std::make_unique<ExtendPolicy>();
	case PolicyKind::Express: return std::make_unique<ExpressPolicy>();
	case PolicyKind::Gang: return std::make_unique<GangPolicy>();
	case PolicyKind::Adaptive: return std::make_unique<AdaptivePolicy>(options);
	}
	return std::make_unique<CfsPolicy>();
}

} // namespace spindle::sched

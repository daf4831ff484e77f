#include "sched/policies/adaptive.h"

#include <algorithm>

#include "sched/core.h"

namespace spindle::sched {

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

bool AdaptivePolicy::spunWithin(const SchedCore &core, int vm, unsigned ticks) const
{
	const VmModel &m = core.vm(vm);
	return m.spunEver && core.now() - m.lastSpinNs <= ticks * options_.tickNs;
}

bool AdaptivePolicy::vmSpinsRecently(const SchedCore &core, int vm) const
{
	return spunWithin(core, vm, turnsActive_ ? kTurnSpinMemoryTicks : kSpinMemoryTicks);
}

bool AdaptivePolicy::vcpusCompete(const SchedCore &core) const
{
	size_t ready = 0;
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const VmModel &m = core.vm(static_cast<int>(id));
		ready += m.active ? m.readyVcpus() : 0;
	}
	if (ready > core.poolCpus().size())
		return true;
	// Fewer than the CPUs, but pinned so that one waits behind another (a co-boost's move).
	std::vector<int> &running = runningCpus_;
	running.clear();
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const VmModel &m = core.vm(static_cast<int>(id));
		for (const VcpuModel &v : m.vcpus)
			if (m.active && v.observed && v.state == VcpuState::Running && v.cpu >= 0)
				running.push_back(v.cpu);
	}
	for (size_t id = 0; id < core.vmCount(); ++id) {
		const VmModel &m = core.vm(static_cast<int>(id));
		for (const VcpuModel &v : m.vcpus)
			if (m.active && v.observed && v.state == VcpuState::Runnable &&
			    std::find(running.begin(), running.end(), v.cpu) != running.end())
				return true;
	}
	return false;
}

bool AdaptivePolicy::preemptedLong(const SchedCore &core, int vm) const
{
	for (const VcpuModel &v : core.vm(vm).vcpus)
		if (v.observed && v.state == VcpuState::Runnable && core.now() - v.stateSinceNs >= kLongPreemptionNs)
			return true;
	return false;
}

bool AdaptivePolicy::scanForCompetition(const SchedCore &core) const
{
	if (!vcpusCompete(core))
		return false;
	competedEver_ = true; // remembered, so the next spin waits need no scan
	lastCompetitionNs_ = core.now();
	return true;
}

bool AdaptivePolicy::competedRecently(const SchedCore &core) const
{
	return competedEver_ && core.now() - lastCompetitionNs_ <= kContendedMemoryTicks * options_.tickNs;
}

bool AdaptivePolicy::contended(const SchedCore &core, int vm) const
{
	// The memory first: it is what an overcommitted pool answers with, without a scan of every
	// vCPU per spin wait (the tick refreshes it).
	return competedRecently(core) || scanForCompetition(core) || preemptedLong(core, vm);
}

bool AdaptivePolicy::answersSpins(const SchedCore &core) const
{
	if (turnsActive_)
		return false; // onSpin: the turns are the answer
	if (competedRecently(core) || scanForCompetition(core))
		return true; // asked after every event: one scan of the pool, not one per VM
	for (size_t id = 0; id < core.vmCount(); ++id)
		if (core.vm(static_cast<int>(id)).active && preemptedLong(core, static_cast<int>(id)))
			return true;
	return false;
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
	if (!contended(core, spinner.vm)) {
		core.traceEvent("spin_unanswered", spinner, "uncontended", 0);
		return; // whoever it waits for is running or waking: nobody to displace
	}
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
	(void)scanForCompetition(core);
	updateTurns(core);
	if (turnsActive_) {
		spinning_.assign(core.vmCount(), false);
		for (size_t id = 0; id < core.vmCount(); ++id)
			spinning_[id] = core.vm(static_cast<int>(id)).vcpus.size() >= core.poolCpus().size() &&
					vmSpinsRecently(core, static_cast<int>(id));
		turns_.onTick(core, spinning_);
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
		if (!vmSpinsRecently(core, vm) || !contended(core, vm))
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
		// Narrower than the pool: every turn of its own would leave a hole. Its width, not how
		// many of its vCPUs are ready now: a VM whose vCPUs halt leaves holes in its turns
		// that the waiting VMs' SCHED_IDLE threads fill, and its turns still co-schedule its
		// holders (measured, PVM ring 3, 2x sleepy ticket: 0.69-0.71 of the limit, level with
		// gang, against 0.64-0.65 when the ready count at each tick started and ended turns).
		// Such a VM's spin ends turns only while it is recent outside turns too: with the
		// turns' long memory one spin would end every phase of turns for 10 s.
		if (m.vcpus.size() < pool) {
			if (spunWithin(core, static_cast<int>(id), kSpinMemoryTicks))
				return false;
			continue;
		}
		if (vmSpinsRecently(core, static_cast<int>(id)))
			anySpins = true;
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
	turns_.pause();
}

void AdaptivePolicy::updateTurns(SchedCore &core)
{
	const bool want = turnsWanted(core);
	const uint64_t t = core.now();
	if (!looked_ || want == turnsActive_) {
		looked_ = true;
		disagreeingTicks_ = want == turnsActive_ ? 0 : 1;
		agreedNs_ = t;
		return;
	}
	// kTurnHysteresisTicks fast ticks' time, and two looks at least: in turns the scheduler
	// ticks at turn ends only (Policy::turnEndsNs), a quantum apart.
	if (++disagreeingTicks_ < 2 || t - agreedNs_ < kTurnHysteresisTicks * options_.tickNs)
		return;
	disagreeingTicks_ = 0;
	agreedNs_ = t;
	turnsActive_ = want;
	core.traceEvent(want ? "turns_start" : "turns_end", { 0, 0 }, "adaptive", 0);
	if (!want)
		endTurns(core);
}

void AdaptivePolicy::onHint(SchedCore &core, VcpuId who)
{
	// A hold that ends during turns is over all the same: its holder may be extended for the next.
	extend_.trackHold(core, who);
	if (turnsActive_)
		return; // turns co-schedule holders already; an extension would break a turn
	// Extensions cost the other VMs CPU; grant them only where spin waits happen.
	VcpuModel &v = core.vcpu(who);
	if (v.locksHeld == 0 || (vmSpinsRecently(core, who.vm) && contended(core, who.vm)))
		extend_.answerHint(core, who);
}

void AdaptivePolicy::onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool early)
{
	if (reason != BoostReason::Coboost)
		return;
	bool lastOfRound = coboost_.inFlight(who.vm) == 1;
	coboost_.onBoostEnded(core, who, reason, early);
	if (!lastOfRound)
		return;
	// Progress: no spin wait was reported in the VM after the round started. Few rounds with
	// progress: the holder needs longer, double the slice; most with progress: try cheaper.
	VmState &s = state(who.vm);
	s.rounds++;
	if (coboost_.quietSinceRound(core, who.vm))
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

} // namespace spindle::sched

#include "sched/core.h"

#include <algorithm>

#include "sched/ledger.h"
#include "sched/policy.h"
#include "spindle_abi.h"

namespace spindle::sched {

const char *toString(VcpuState state)
{
	switch (state) {
	case VcpuState::Running: return "running";
	case VcpuState::Runnable: return "runnable";
	case VcpuState::Halted: return "halted";
	}
	return "?";
}

const char *toString(BoostReason reason)
{
	switch (reason) {
	case BoostReason::Coboost: return "coboost";
	case BoostReason::Extend: return "extend";
	case BoostReason::Express: return "express";
	case BoostReason::Gang: return "gang";
	case BoostReason::Yield: return "yield";
	}
	return "?";
}

const char *toString(ActionKind kind)
{
	switch (kind) {
	case ActionKind::Boost: return "boost";
	case ActionKind::Unboost: return "unboost";
	case ActionKind::Move: return "move";
	case ActionKind::Deprioritize: return "deprioritize";
	case ActionKind::Restore: return "restore";
	case ActionKind::SetNice: return "set_nice";
	}
	return "?";
}

SchedCore::SchedCore(SchedulerOptions options, std::vector<int> poolCpus, const Clock &clock)
	: options_(std::move(options)), poolCpus_(std::move(poolCpus)), clock_(clock),
	  shareGuard_(options_, poolCpus_.size())
{
	policy_ = makePolicy(options_);
	lastSpinAnyNs_ = clock_.nowNs();
}

SchedCore::~SchedCore() = default;

bool SchedCore::valid(VcpuId id) const
{
	return id.vm >= 0 && static_cast<size_t>(id.vm) < vms_.size() && id.vcpu < vm(id.vm).vcpus.size();
}

int SchedCore::addVm(std::string name, unsigned vcpuCount, const volatile spindle_hint_slot *hints)
{
	VmModel model;
	model.name = std::move(name);
	model.hints = hints;
	model.vcpus.resize(vcpuCount);
	for (VcpuModel &v : model.vcpus) {
		v.pattern = PatternDetector(options_.spinLow, options_.spinHigh);
		if (!poolCpus_.empty()) {
			v.homeCpu = poolCpus_[nextPlacement_ % poolCpus_.size()];
			v.cpu = v.homeCpu;
			v.pinnedCpu = v.homeCpu;
			++nextPlacement_;
		}
	}
	vms_.push_back(std::move(model));
	return static_cast<int>(vms_.size() - 1);
}

void SchedCore::removeVm(int id)
{
	if (id < 0 || static_cast<size_t>(id) >= vms_.size() || !vm(id).active)
		return;
	VmModel &m = vm(id);
	for (unsigned i = 0; i < m.vcpus.size(); ++i) {
		VcpuId who{ id, i };
		if (m.vcpus[i].boosted)
			endBoost(who, true);
		if (m.vcpus[i].deprioritized)
			restorePriority(who);
	}
	m.active = false;
	m.hints = nullptr;
}

void SchedCore::emit(Action action)
{
	action.issuedNs = now();
	actions_.push_back(action);
}

void SchedCore::traceEvent(const char *event, VcpuId who, const char *detail, uint64_t value)
{
	if (traceOn_)
		trace_.push_back({ now(), event, who, detail, value });
}

void SchedCore::countDenied(VcpuId who, const char *bound)
{
	vcpu(who).counters.deniedBounds++;
	traceEvent("deny", who, bound, 0);
}

// ---- Events ---------------------------------------------------------------------------------

void SchedCore::spinDetected(VcpuId spinner, SpinSource source, uint32_t waitsOn)
{
	if (!valid(spinner) || !vm(spinner.vm).active)
		return;
	VmModel &m = vm(spinner.vm);
	VcpuModel &v = vcpu(spinner);
	// A named vCPU outside the VM, or the spinner itself, is a guest error: keep the detection,
	// drop the name.
	if (waitsOn != kNoVcpu && (waitsOn >= m.vcpus.size() || waitsOn == spinner.vcpu)) {
		v.counters.hintsInvalid++;
		waitsOn = kNoVcpu;
	}
	v.counters.spins[static_cast<unsigned>(source)]++;
	uint64_t t = now();
	m.lastSpinNs = t;
	m.spunEver = true;
	lastSpinAnyNs_ = t;
	activity_++;
	m.spinsTotal++;
	traceEvent("spin", spinner, toString(source), waitsOn);
	policy_->onSpin(*this, spinner, source, waitsOn);
}

void SchedCore::longSpin(VcpuId spinner, uint32_t waitsOn, uint32_t /*lockId*/, uint32_t count)
{
	if (!valid(spinner) || !vm(spinner.vm).active || count == 0 || !options_.detectPv)
		return;
	VcpuModel &v = vcpu(spinner);
	uint64_t t = now();
	// The guest is hostile: at most one notification per pvMinIntervalNs is acted on, the rest
	// (including the ones coalesced before they reached us) are counted and dropped.
	bool accept = !v.pvSeen || t - v.lastPvNs >= options_.pvMinIntervalNs;
	v.counters.pvDropped += accept ? count - 1 : count;
	if (!accept)
		return;
	v.pvSeen = true;
	v.lastPvNs = t;
	vm(spinner.vm).reportsSpins = true;
	v.counters.pvAccepted++;
	spinDetected(spinner, SpinSource::Pv, waitsOn);
}

void SchedCore::pauseExits(VcpuId who, uint64_t count, uint64_t inLongWindow)
{
	if (!valid(who) || !vm(who.vm).active)
		return;
	VcpuModel &v = vcpu(who);
	if (options_.detectPattern) {
		// A quiet tick's count, scaled to a fast tick, averages a burst away: more exits than
		// the high threshold in the whole window means some fast tick of it might have been
		// over it. Fewer means none was, so the quiet tick changes nothing. Over: tick fast
		// and let the detector judge fast ticks (a spin seen by nothing else stayed unseen).
		if (inLongWindow > options_.spinHigh && !v.pattern.spinning()) {
			pauseBurstSeen_ = true;
			lastPauseBurstNs_ = now();
			// A backed-off tick is a long window too: without this its scaled count kept the
			// detector blind and the tick slow for whole runs (the emulated host's
			// pattern-only coboost test saw no spin in 318 of 326 backed-off ticks).
			activity_++;
		}
		if (v.pattern.feed(count))
			spinDetected(who, SpinSource::Pattern);
	} else if (options_.detectPle && count > 0) {
		spinDetected(who, SpinSource::Ple);
	}
}

void SchedCore::sampled(VcpuId who, uint64_t samples, uint8_t cpl, bool likelyHoldsLock)
{
	if (!valid(who) || !vm(who.vm).active)
		return;
	VcpuModel &v = vcpu(who);
	v.counters.samples += samples;
	v.sampledCpl = cpl;
	v.sampledHoldsLock = likelyHoldsLock;
}

void SchedCore::vcpuState(VcpuId who, VcpuState state, int cpu)
{
	if (!valid(who))
		return;
	VcpuModel &v = vcpu(who);
	// The timeline's state track (--trace-format perfetto) needs every change, not every tick.
	if (!v.observed || v.state != state) {
		traceEvent("state", who, toString(state), static_cast<uint64_t>(cpu < 0 ? 0 : cpu));
		v.stateSinceNs = now();
	}
	v.state = state;
	v.observed = true;
	if (cpu >= 0)
		v.cpu = cpu;
}

void SchedCore::cpuTime(VcpuId who, uint64_t deltaNs)
{
	if (!valid(who))
		return;
	vcpu(who).counters.cpuNs += deltaNs;
	vm(who.vm).tickCpuNs += deltaNs;
}

void SchedCore::chargeOverrun(VcpuId who, uint64_t extraNs)
{
	if (!valid(who) || extraNs == 0)
		return;
	VcpuModel &v = vcpu(who);
	if (ledger::chargeOverrun(vm(who.vm), v, extraNs, now()) && !v.boosted)
		updatePenalty(who);
}

void SchedCore::hintUpdate(VcpuId who, uint32_t seq, uint32_t locksHeld, uint32_t waitingOn)
{
	if (!valid(who) || !vm(who.vm).active)
		return;
	VmModel &m = vm(who.vm);
	VcpuModel &v = vcpu(who);
	if (v.hintSeen && v.hintSeq == seq)
		return;
	// A hostile guest can inflate this; it only steers its own VM's choice between bounded,
	// share-guarded responses.
	if (v.hintSeen)
		m.hintProgress += static_cast<uint32_t>(seq - v.hintSeq);
	if (locksHeld > kMaxLocksHeld) {
		v.counters.hintsInvalid++;
		locksHeld = kMaxLocksHeld;
	}
	if (waitingOn != kNoVcpu && (waitingOn >= m.vcpus.size() || waitingOn == who.vcpu)) {
		v.counters.hintsInvalid++;
		waitingOn = kNoVcpu;
	}
	bool startedWaiting = waitingOn != kNoVcpu && waitingOn != v.waitingOn;
	if (!v.hintSeen || v.locksHeld != locksHeld)
		traceEvent("locks_held", who, "hint", locksHeld);
	v.hintSeen = true;
	v.hintSeq = seq;
	v.locksHeld = locksHeld;
	v.waitingOn = waitingOn;
	policy_->onHint(*this, who);
	if (startedWaiting)
		spinDetected(who, SpinSource::Hint, waitingOn);
}

void SchedCore::extensionEndedByRelease(VcpuId who)
{
	// Called from onHint: hintReadNs is still the previous read of the slot, and the release
	// happened after it, so the end is at most this late. A slot never read before (a hint
	// reported directly) gives no bound.
	const VcpuModel &v = vcpu(who);
	if (v.hintReadNs == 0)
		return;
	uint64_t late = now() - std::min(now(), v.hintReadNs);
	extendEndLateMaxNs_ = std::max(extendEndLateMaxNs_, late);
	extendEndLateSumNs_ += late;
	extendEndLateCount_++;
}

void SchedCore::readHintSlot(VcpuId who)
{
	VmModel &m = vm(who.vm);
	if (!m.active || m.hints == nullptr)
		return;
	// Each field is read exactly once (volatile, naturally aligned 32-bit loads are single loads
	// on x86): the guest may change it under us, and a value checked must be the value used.
	const volatile spindle_hint_slot &slot = m.hints[who.vcpu];
	uint32_t seq = slot.seq;
	uint32_t locks = slot.locks_held;
	uint32_t waiting = slot.waiting_on;
	hintUpdate(who, seq, locks, waiting);
	vcpu(who).hintReadNs = now();
}

void SchedCore::sampleHints()
{
	for (size_t id = 0; id < vms_.size(); ++id)
		for (unsigned i = 0; i < vms_[id].vcpus.size(); ++i)
			readHintSlot({ static_cast<int>(id), i });
	lastHintPollNs_ = now();
}

bool SchedCore::extensionRunning() const
{
	for (VcpuId who : timed_.ids()) {
		const VcpuModel &v = vcpu(who);
		if (v.boosted && v.boostReason == BoostReason::Extend && vm(who.vm).active && vm(who.vm).hints != nullptr)
			return true;
	}
	return false;
}

void SchedCore::pollExtensions()
{
	// An extension is worth something only until the lock is released, and the tick (1 ms) is
	// longer than the extension (0.5 ms): between ticks the slots of extended vCPUs are re-read
	// every extendPollNs, so an end comes at most that late (plus the unboost system call).
	if (!options_.detectHints || now() - lastHintPollNs_ < options_.extendPollNs)
		return;
	// Collected first: a release seen in a slot ends the boost, which leaves the timed set.
	std::vector<VcpuId> extended;
	for (VcpuId who : timed_.ids()) {
		const VcpuModel &v = vcpu(who);
		if (v.boosted && v.boostReason == BoostReason::Extend)
			extended.push_back(who);
	}
	for (VcpuId who : extended)
		readHintSlot(who);
	lastHintPollNs_ = now();
}

void SchedCore::expire()
{
	// Hints first: an extension whose holder has released ends because of the release, even
	// when the scheduler woke too late to see it before the budget ran out.
	pollExtensions();
	if (timed_.empty())
		return;
	uint64_t t = now();
	// Collected first, because ending a boost leaves the set; most events find nothing due, and
	// then nothing is copied (gang's placement can put every vCPU in the set).
	std::vector<VcpuId> due;
	for (VcpuId who : timed_.ids()) {
		const VcpuModel &v = vcpu(who);
		if ((v.boosted && t >= v.boostUntilNs) || (v.deprioritized && t >= v.deprioUntilNs))
			due.push_back(who);
	}
	for (VcpuId who : due) {
		VcpuModel &v = vcpu(who);
		if (v.boosted && t >= v.boostUntilNs)
			endBoost(who, false);
		if (v.deprioritized && t >= v.deprioUntilNs)
			restorePriority(who);
	}
}

void SchedCore::repay(uint64_t elapsedNs)
{
	const int64_t pay = ledger::repayment(elapsedNs, options_.repayPercent);
	for (size_t id = 0; id < vms_.size(); ++id) {
		VmModel &m = vms_[id];
		for (unsigned i = 0; i < m.vcpus.size(); ++i)
			if (ledger::repay(m.vcpus[i], pay))
				updatePenalty({ static_cast<int>(id), i });
	}
}

void SchedCore::updatePenalty(VcpuId who)
{
	VcpuModel &v = vcpu(who);
	bool want = ledger::penaltyWanted(vm(who.vm), v);
	if (want == v.penalized)
		return;
	v.penalized = want;
	emit({ .kind = ActionKind::SetNice, .who = who, .nice = want ? options_.debtNice : 0 });
}

void SchedCore::updateShares(uint64_t elapsedNs)
{
	for (int id : shareGuard_.update(vms_, elapsedNs, now())) {
		VmModel &m = vm(id);
		traceEvent(m.overShare ? "share_hold" : "share_release", { id, 0 }, m.name.c_str(),
			   static_cast<uint64_t>(std::max(-m.shareBalanceNs, 0.0)));
		if (m.overShare) {
			// Its favours end now; what they did not use is credited back.
			for (unsigned i = 0; i < m.vcpus.size(); ++i)
				if (m.vcpus[i].boosted && m.vcpus[i].boostDebited)
					endBoost({ id, i }, true);
		}
		for (unsigned i = 0; i < m.vcpus.size(); ++i)
			updatePenalty({ id, i });
	}
}

void SchedCore::tick()
{
	uint64_t t = now();
	uint64_t elapsed = ticked_ ? t - lastTickNs_ : 0;
	lastTickNs_ = t;
	ticked_ = true;
	expire();
	if (options_.detectHints)
		sampleHints();
	repay(elapsed);
	updateShares(elapsed);
	policy_->onTick(*this);
}

// ---- Grants ---------------------------------------------------------------------------------

bool SchedCore::grantBoost(VcpuId who, uint64_t budgetNs, BoostReason reason, bool debited, int onCpu)
{
	if (!valid(who) || !vm(who.vm).active)
		return false;
	VcpuModel &v = vcpu(who);
	if (v.boosted) {
		countDenied(who, "already_boosted");
		return false;
	}
	if (reason != BoostReason::Gang && options_.maxConcurrentBoosts > 0 &&
	    boostedCount() >= options_.maxConcurrentBoosts) {
		countDenied(who, "boost_capacity");
		return false;
	}
	if (debited && ledger::inDebt(v)) {
		v.counters.deniedDebt++;
		traceEvent("deny", who, "debt", static_cast<uint64_t>(v.debtNs));
		return false;
	}
	if (debited && vm(who.vm).overShare) {
		v.counters.deniedShare++;
		traceEvent("deny", who, "share", 0);
		return false;
	}
	if (v.deprioritized) {
		v.deprioritized = false; // the boost replaces the idle class
	}
	if (onCpu >= 0) {
		pin(who, onCpu); // before the boost, so the boosted thread starts on its new CPU
		v.counters.moves++;
	}
	uint64_t t = now();
	v.boosted = true;
	v.boostReason = reason;
	v.boostDebited = debited;
	v.boostStartNs = t;
	v.boostUntilNs = t + budgetNs;
	v.boostBudgetNs = budgetNs;
	timed_.update(who, true);
	v.counters.boosts++;
	activity_++;
	if (debited)
		ledger::debit(vm(who.vm), v, budgetNs, t);
	emit({ .kind = ActionKind::Boost, .who = who, .budgetNs = budgetNs, .untilNs = t + budgetNs,
	       .reason = reason });
	return true;
}

bool SchedCore::answersSpins() const { return policy_->answersSpins(*this); }

uint64_t SchedCore::turnEndsNs() const { return policy_->turnEndsNs(*this); }

bool SchedCore::quietTickAllowed() const
{
	const uint64_t recent = kQuietAfterTicks * options_.tickNs;
	const bool spunLately = now() - lastSpinAnyNs_ < recent || (pauseBurstSeen_ && now() - lastPauseBurstNs_ < recent);
	if ((spunLately && policy_->answersSpins(*this)) || !policy_->allowsQuietTicks(*this))
		return false;
	for (const VmModel &m : vms_) {
		if (!m.active)
			continue;
		if (m.overShare)
			return false;
		for (const VcpuModel &v : m.vcpus)
			if (v.boosted || v.deprioritized || v.penalized || ledger::inDebt(v))
				return false;
	}
	return true;
}

unsigned SchedCore::boostedCount() const
{
	unsigned boosted = 0;
	for (VcpuId who : timed_.ids())
		boosted += vcpu(who).boosted ? 1 : 0;
	return boosted;
}

void SchedCore::endBoost(VcpuId who, bool early)
{
	if (!valid(who))
		return;
	VcpuModel &v = vcpu(who);
	if (!v.boosted)
		return;
	uint64_t t = now();
	uint64_t used = std::min(t - v.boostStartNs, v.boostBudgetNs);
	v.boosted = false;
	timed_.update(who, v.deprioritized);
	v.counters.boostedNs += used;
	if (v.boostDebited && early && used < v.boostBudgetNs)
		ledger::creditUnused(v, v.boostBudgetNs - used);
	emit({ .kind = ActionKind::Unboost, .who = who, .reason = v.boostReason });
	if (v.pinnedCpu != v.homeCpu) {
		// A move was for this boost only: left where it was, moved vCPUs drift and pile up
		// on some CPUs, and the placement's balance (one vCPU per VM per CPU) is lost.
		pin(who, v.homeCpu);
		v.counters.movesHome++;
	}
	updatePenalty(who);
	policy_->onBoostEnded(*this, who, v.boostReason, early);
}

void SchedCore::pin(VcpuId who, int cpu)
{
	VcpuModel &v = vcpu(who);
	v.cpu = cpu;
	v.pinnedCpu = cpu;
	emit({ .kind = ActionKind::Move, .who = who, .cpu = cpu });
}

void SchedCore::deprioritize(VcpuId who, uint64_t durationNs)
{
	if (!valid(who) || !vm(who.vm).active)
		return;
	VcpuModel &v = vcpu(who);
	if (v.boosted)
		return; // a boost outranks a yield: never fight the policy's own grant
	uint64_t t = now();
	v.deprioritized = true;
	v.deprioUntilNs = t + durationNs;
	timed_.update(who, true);
	emit({ .kind = ActionKind::Deprioritize, .who = who, .untilNs = t + durationNs });
}

void SchedCore::restorePriority(VcpuId who)
{
	if (!valid(who))
		return;
	VcpuModel &v = vcpu(who);
	if (!v.deprioritized)
		return;
	v.deprioritized = false;
	timed_.update(who, v.boosted);
	emit({ .kind = ActionKind::Restore, .who = who });
}

std::vector<Action> SchedCore::takeActions()
{
	std::vector<Action> out;
	out.swap(actions_);
	return out;
}

std::vector<TraceRecord> SchedCore::takeTrace()
{
	std::vector<TraceRecord> out;
	out.swap(trace_);
	return out;
}

uint64_t SchedCore::nextExpiryNs() const
{
	uint64_t next = UINT64_MAX;
	for (VcpuId who : timed_.ids()) {
		const VcpuModel &v = vcpu(who);
		if (v.boosted)
			next = std::min(next, v.boostUntilNs);
		if (v.deprioritized)
			next = std::min(next, v.deprioUntilNs);
	}
	if (options_.detectHints && extensionRunning())
		next = std::min(next, lastHintPollNs_ + options_.extendPollNs);
	return next;
}

// ---- Metrics --------------------------------------------------------------------------------

CoreMetrics SchedCore::metrics() const
{
	CoreMetrics out;
	out.policy = options_.policy;
	out.vms.reserve(vms_.size());
	for (const VmModel &m : vms_) {
		VmMetrics &row = out.vms.emplace_back();
		row.name = m.name;
		row.counters = m.counters;
		row.vcpus.reserve(m.vcpus.size());
		for (const VcpuModel &v : m.vcpus) {
			row.totals += v.counters;
			row.vcpus.push_back(v.counters);
		}
	}
	out.extensionEndLateMaxNs = extendEndLateMaxNs_;
	out.extensionEndLateMeanNs = extendEndLateCount_ ? extendEndLateSumNs_ / extendEndLateCount_ : 0;
	return out;
}

void SchedCore::writeMetricsJson(std::string &out) const
{
	JsonWriter json(out);
	writeJson(json, metrics());
}

} // namespace spindle::sched

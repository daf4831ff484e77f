#pragma once

#include <vector>

#include "sched/policies/coboost.h"
#include "sched/policies/express.h"
#include "sched/policies/extend.h"
#include "sched/policies/spin_turns.h"

namespace spindle::sched {

// Spindle's own. Per spin wait: a named vCPU (holder or next waiter) or a hinted, de-scheduled
// holder is answered with the VM's current response for named vCPUs (express it, or co-boost
// the siblings); a spin with nothing named is co-boosted with this VM's slice; VMs that do not
// spin get nothing (no extensions either). What it adapts from what it observes:
//  - the response for named vCPUs, per VM, from lock progress (hint seq advance per ms) in
//    epochs: each epoch uses the response with the better average so far, every
//    kExploreEvery-th epoch tries the other, so a host where short express windows cannot be
//    delivered in time (slow actuation) converges to co-boosting, and a fast host to express;
//  - the co-boost slice, per VM, from the share of rounds followed by progress.
// And when every VM that spins is as wide as the pool (and no VM is wider), the spinning VMs
// take turns on the pool as under gang: that removes holder and waiter preemption outright, and
// what their halted vCPUs leave of a turn the waiting VMs' SCHED_IDLE threads fill. The VMs
// that do not spin share one more turn under CFS, as long as their ready vCPUs need
// (spin_turns.h). When no VM spins any more, or a narrower one does, the turns end.
// Fairness is the share guard's job (core), which holds every policy here to each VM's share;
// turns are fair by rotation.
// None of it happens where no vCPU waits for a CPU (contended()): a boost can only displace a
// thread, and with none to displace it costs system calls and fast ticks for nothing (measured:
// pvhalt alone at 1x, 0.926 of cfs when every report was answered; sched/README.md, rule 5).
class AdaptivePolicy : public Policy
{
public:
	enum class Response : uint8_t { Express, Coboost };

	explicit AdaptivePolicy(const SchedulerOptions &options);
	void onSpin(SchedCore &core, VcpuId spinner, SpinSource source, uint32_t waitsOn) override;
	void onHint(SchedCore &core, VcpuId who) override;
	void onTick(SchedCore &core) override;
	void onBoostEnded(SchedCore &core, VcpuId who, BoostReason reason, bool early) override;
	// Not while turns run: they go on for kTurnSpinMemoryTicks after the last spin they hide.
	bool allowsQuietTicks(const SchedCore &) const override { return !turnsActive_; }
	bool answersSpins(const SchedCore &core) const override;
	uint64_t turnEndsNs(const SchedCore &) const override { return turnsActive_ ? turns_.endsNs() : 0; }
	// Whether a vCPU of `vm` may be waiting for a CPU: within kContendedMemoryTicks the pool had
	// more ready vCPUs than CPUs or a vCPU preempted on a CPU where another runs, or one of the
	// VM's vCPUs has been preempted for at least kLongPreemptionNs (by a thread outside the VMs:
	// a host process, a co-runner).
	bool contended(const SchedCore &core, int vm) const;
	uint64_t sliceNs(int vm) const;
	Response response(int vm) const;

	// A VM counts as spinning if it reported a spin wait within this many ticks.
	static constexpr unsigned kSpinMemoryTicks = 20;
	// ... and while turns run, within this many: turns hide the spinning they cure, so a VM in
	// turns reports few spins, and with the short memory turns ended within a few quanta and the
	// preempted holders were back (measured: ticket at 2x on PVM, turns took 0.85 to 0.91 of
	// gang's throughput only when they lasted; 200 ticks gave 0.93 of gang, 1000 ticks 0.99-1.0
	// in 1 s runs; in 3 s runs 1000 ticks ended turns once a second and the sampler took up to
	// 250 ms to see spins again, 0.93 of gang, 10,000 ticks 1.0: sched/README.md, rule 4).
	static constexpr unsigned kTurnSpinMemoryTicks = 10000;
	// Rounds looked at before the slice is adapted.
	static constexpr unsigned kAdaptRounds = 8;
	// An epoch of the response choice, in ticks, and how often the other response is tried.
	static constexpr unsigned kEpochTicks = 20;
	static constexpr unsigned kExploreEvery = 4;
	// Fast ticks' time the turn condition must hold (or fail) before turns start (or end), over
	// two ticks at least (at turn ends, while turns run).
	static constexpr unsigned kTurnHysteresisTicks = 5;
	bool turnsActive() const { return turnsActive_; }
	// A pool overcommitted this recently still counts: ready counts swing with every halt, and
	// a spin is reported a spin threshold after the preemption that caused it.
	static constexpr unsigned kContendedMemoryTicks = 20;
	// Longer than a wake-up and than the scheduler thread's own work on a vCPU's CPU (tens to a
	// few hundred microseconds: what made a lone VM's vCPUs look preempted at 1x), shorter than
	// a CFS slice of a competing thread (EEVDF's base slice, 0.75 ms x (1 + log2 CPUs)).
	static constexpr uint64_t kLongPreemptionNs = 1'000'000;

private:
	struct VmState {
		uint64_t sliceNs;
		unsigned rounds = 0;
		unsigned progressed = 0;
		Response response = Response::Express;
		uint64_t epochStartNs = 0;
		uint64_t progressAtEpoch = 0;
		unsigned epochs = 0;
		double rate[2] = { -1.0, -1.0 }; // average hint progress per ms under each response
	};
	VmState &state(int vm);
	bool spunWithin(const SchedCore &core, int vm, unsigned ticks) const;
	// Within kSpinMemoryTicks, or kTurnSpinMemoryTicks while turns run.
	bool vmSpinsRecently(const SchedCore &core, int vm) const;
	bool vcpusCompete(const SchedCore &core) const;
	bool preemptedLong(const SchedCore &core, int vm) const;
	bool competedRecently(const SchedCore &core) const;
	// vcpusCompete, and when it says so, remembered for kContendedMemoryTicks.
	bool scanForCompetition(const SchedCore &core) const;
	void endEpoch(SchedCore &core, int vm);
	void answerNamed(SchedCore &core, VcpuId spinner, uint32_t target);
	bool turnsWanted(const SchedCore &core) const;
	void updateTurns(SchedCore &core);
	void endTurns(SchedCore &core);

	const SchedulerOptions &options_;
	std::vector<VmState> vms_;
	CoboostPolicy coboost_;
	ExtendPolicy extend_;
	ExpressPolicy express_;
	SpinTurns turns_;
	std::vector<bool> spinning_; // per VM, this tick: whether it gets turns of its own
	bool turnsActive_ = false;
	// The turn condition's hysteresis: ticks it disagreed with turnsActive_ in a row, and when
	// it last agreed (or was first looked at).
	unsigned disagreeingTicks_ = 0;
	uint64_t agreedNs_ = 0;
	bool looked_ = false;
	// When vCPUs last competed for the pool (scanForCompetition, at every tick and at spin waits
	// once the memory is stale).
	mutable bool competedEver_ = false;
	mutable uint64_t lastCompetitionNs_ = 0;
	mutable std::vector<int> runningCpus_; // vcpusCompete's scratch, kept between calls
};

} // namespace spindle::sched

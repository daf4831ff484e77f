#pragma once

// The policy core's vocabulary: identifiers, the model of VMs and vCPUs, the events that come in
// and the actions that go out. Nothing here touches the host; the host actuator turns actions into
// system calls and the host observer turns /proc and perf readings into events.

#include <cstdint>
#include <string>
#include <vector>

#include "sched/metrics.h"

struct spindle_hint_slot;

namespace spindle::sched {

// Time source of the policy core. The real one reads CLOCK_MONOTONIC; tests script their own.
class Clock
{
public:
	virtual ~Clock() = default;
	virtual uint64_t nowNs() const = 0;
};

constexpr uint32_t kNoVcpu = 0xffffffffu; // SPINDLE_VCPU_NONE
constexpr uint32_t kMaxLocksHeld = 64;    // hint values above this are clamped and counted

struct VcpuId {
	int vm = -1;
	unsigned vcpu = 0;
	bool operator==(const VcpuId &) const = default;
};

enum class VcpuState : uint8_t {
	Running,  // on a CPU now
	Runnable, // wants a CPU, is preempted (inside KVM_RUN, so KVM sees it preempted too)
	Halted,   // blocked (guest HLT or waiting in the kernel)
};

enum class BoostReason : uint8_t { Coboost, Extend, Express, Gang, Yield };

const char *toString(VcpuState state);
const char *toString(BoostReason reason);

enum class ActionKind : uint8_t {
	Boost,        // run above every unboosted vCPU for budgetNs (until untilNs)
	Unboost,      // back to the normal class at the current nice
	Move,         // pin to cpu (placement changes; a deadline-boosted thread takes it at unboost)
	Deprioritize, // SCHED_IDLE until untilNs: the only "yield" one thread can impose on another
	Restore,      // end of a deprioritization: back to the normal class
	SetNice,      // ledger weight: nice = original + nice while in debt, original when repaid
};

const char *toString(ActionKind kind);

struct Action {
	ActionKind kind;
	VcpuId who;
	uint64_t issuedNs = 0; // core time at the decision, for actuation latency in the trace
	uint64_t budgetNs = 0; // Boost: CPU time granted
	uint64_t untilNs = 0;  // Boost, Deprioritize: when the core will end it
	int cpu = -1;          // Move
	int nice = 0;          // SetNice: increment over the thread's original nice
	BoostReason reason = BoostReason::Coboost;
};

// The two-threshold spin classifier of the patent: below `low` PAUSE exits per window the vCPU is
// not spinning, above `high` it is, in between its previous classification stands. The gap is
// what keeps a vCPU whose rate hovers around one threshold from flapping.
class PatternDetector
{
public:
	PatternDetector(uint32_t low = 2, uint32_t high = 8) : low_(low), high_(high) {}

	// Feeds the count of one window; returns the classification after it.
	bool feed(uint64_t pauseExits)
	{
		if (pauseExits < low_)
			spinning_ = false;
		else if (pauseExits > high_)
			spinning_ = true;
		return spinning_;
	}
	bool spinning() const { return spinning_; }

private:
	uint32_t low_;
	uint32_t high_;
	bool spinning_ = false;
};

struct VcpuModel {
	VcpuState state = VcpuState::Runnable;
	uint64_t stateSinceNs = 0; // core time of the last change of `state` (or of the first report)
	int cpu = -1;     // last CPU seen (or the home CPU before any observation)
	bool observed = false; // its thread's state has been reported (attached and sampled)
	int homeCpu = -1; // placement: pinned here when not moved
	int pinnedCpu = -1; // where its thread is pinned now (homeCpu, or a co-boost's move)

	bool boosted = false;
	BoostReason boostReason = BoostReason::Coboost;
	bool boostDebited = false;
	uint64_t boostStartNs = 0;
	uint64_t boostUntilNs = 0;
	uint64_t boostBudgetNs = 0;

	bool deprioritized = false;
	uint64_t deprioUntilNs = 0;

	// Ledger: positive debt is boosted time not yet paid back.
	int64_t debtNs = 0;
	bool penalized = false; // the penalty nice is applied (debt, or the VM is over its share)

	// Hint slot as last sampled (validated).
	bool hintSeen = false;
	uint32_t hintSeq = 0;
	uint32_t locksHeld = 0;
	uint32_t waitingOn = kNoVcpu;
	uint64_t hintReadNs = 0; // when the slot was last read (a release happened after it)

	// From RIP samples (sched/sampling): hints of lesser confidence than the hint page, read off
	// the guest's state instead of said by it. CR8 raised by a guest seen to use the TPR: likely
	// holds a spinlock.
	uint8_t sampledCpl = 0;
	bool sampledHoldsLock = false;

	PatternDetector pattern;
	uint64_t lastPvNs = 0;
	bool pvSeen = false;

	VcpuCounters counters;
};

struct VmModel {
	std::string name;
	bool active = true;
	const volatile spindle_hint_slot *hints = nullptr;
	std::vector<VcpuModel> vcpus;

	uint64_t lastSpinNs = 0;
	bool spunEver = false;
	uint64_t spinsTotal = 0;
	// An accepted PV long-spin report: the guest says itself when it spins, so the sampling
	// detector is only a cost to it (sched/README.md, "Sampling an enlightened guest").
	bool reportsSpins = false;
	// Lock progress as the guest publishes it: the sum of every hint slot's seq advance (each
	// acquire and release bumps seq, so this counts them all, not only the ones a tick sees).
	uint64_t hintProgress = 0;

	// Share guard: CPU time entitled minus CPU time used, decayed over the share window. Below
	// minus the slack the VM is held back (no debited boosts, penalty nice) until it is >= 0.
	double shareBalanceNs = 0;
	bool overShare = false;
	bool debitedEver = false;
	uint64_t lastDebitedNs = 0; // last debited boost granted or overrun charged
	uint64_t tickCpuNs = 0; // CPU time of its vCPUs reported since the last tick
	VmCounters counters;

	// What an unobserved vCPU (its thread not attached or not sampled yet) counts as.
	enum class Unobserved : uint8_t {
		// Wants nothing: the share guard's demand and adaptive's turns must not count a
		// thread that has not started.
		NotReady,
		// Ready: the gang baseline's hole counter, which predates `observed`, has always
		// counted it so (a turn's holes are its VM's width against the pool from the first
		// tick); kept, so the baseline's figures stay comparable with those measured before.
		Ready,
	};

	// vCPUs that want a CPU: seen running or runnable (the one definition of "ready").
	size_t readyVcpus(Unobserved unobserved = Unobserved::NotReady) const
	{
		size_t ready = 0;
		for (const VcpuModel &v : vcpus)
			ready += (v.observed || unobserved == Unobserved::Ready) && v.state != VcpuState::Halted ? 1 : 0;
		return ready;
	}
};

} // namespace spindle::sched

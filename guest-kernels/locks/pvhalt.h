#pragma once

// pvhalt: the upstream Linux PV spinlock design (pv_wait / pv_kick) on Spindle's WAIT and KICK
// records, on a ticket lock. The baseline that Spindle's scheduler-side answers have to beat.
//
// A waiter spins up to the spin threshold, publishing hints as pvticket does (but sending no
// long-spin record: it blocks instead), then says "halted" in its per-vCPU state and PV-waits on
// the lock's serving word, expecting the value it last saw. The releaser advances the serving
// word and kicks the vCPU that holds the next ticket if that vCPU said it halted. Waiters behind
// the next one stay parked: each release wakes exactly the vCPU whose turn it is (ticket order).
//
// Why no wake-up is lost (the Dekker pattern, both sides with a full fence):
//   waiter:   turnOwner[t] = me; state[me] = halted; fence; read serving; wait if != t
//   releaser: serving = t;                         fence; read turnOwner[t]; kick if halted
// Either the waiter's re-read sees serving == t and it does not wait, or the releaser sees both
// stores and kicks. A kick that reaches the host before the waiter's WAIT is kept pending and
// makes that WAIT return at once; the host also returns at once when the serving word moved.
//
// Why it stays correct when the host does less: every WAIT may return early (a timeout, a kick
// meant for an earlier wait, a host that does not park at all). The waiter then re-checks, spins
// another threshold and waits again, so mutual exclusion and FIFO order never depend on the
// host, and without a parking host pvhalt degrades to spinning with one WAIT per threshold.
// A stale turnOwner entry (from the ticket 256 earlier) can only cost a spurious kick.

#include "guest-kernels/locks/spin_wait.h"

namespace spindle::locks {

template<typename P>
class PvHaltLock
{
public:
	// Spins before the first wait when the platform recommends no threshold (0 means "never
	// send long-spin records", not "never spin"): a WAIT is an exit, too dear to take at once.
	static constexpr uint32_t kDefaultThreshold = SPINDLE_DEFAULT_SPIN_THRESHOLD;
	// Each WAIT is bounded well below the host's cap: if a kick is lost (rate-limited by the
	// host), the waiter notices its turn after this long at worst, not after 100 ms.
	static constexpr uint64_t kWaitTimeoutNs = 10'000'000;

	constexpr explicit PvHaltLock(uint32_t id = 0) : id_(id) {}

	// Returns the spin iterations this acquisition took (parked time is not spinning).
	uint64_t acquire(uint32_t cpu)
	{
		uint32_t ticket = __atomic_fetch_add(&next_, 1, __ATOMIC_RELAXED);
		// At most one ticket per vCPU is outstanding, so kMaxCpus slots never collide.
		__atomic_store_n(&turnOwner_[ticket % kMaxCpus], cpu + 1, __ATOMIC_RELAXED);

		SpinWait<P, true, false> wait(cpu, id_);
		uint32_t threshold = 0;
		uint32_t spun = 0; // since the last WAIT
		for (;;) {
			uint32_t serving = __atomic_load_n(&serving_, __ATOMIC_ACQUIRE);
			if (serving == ticket)
				break;
			if (threshold == 0)
				threshold = haltThreshold(); // read lazily: contended acquisitions only
			if (spun < threshold) {
				wait.spin(ownerOf(serving));
				spun++;
				continue;
			}
			spun = 0;
			halt(cpu, ticket);
		}
		uint64_t spins = wait.finish();
		noteLocksHeld<P, true>(cpu, +1);
		return spins;
	}

	void release(uint32_t cpu)
	{
		// Only the holder writes serving_, so a plain read-increment-store is enough.
		uint32_t next = __atomic_load_n(&serving_, __ATOMIC_RELAXED) + 1;
		__atomic_store_n(&serving_, next, __ATOMIC_RELEASE);
		// The releaser's half of the pattern in the header comment: the serving store must be
		// visible before this vCPU reads whether the next waiter halted.
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		// Nobody drew ticket `next` yet: whoever does will find it served.
		if (__atomic_load_n(&next_, __ATOMIC_RELAXED) != next) {
			uint32_t owner = ownerOf(next);
			// Claiming the halted state first makes one kick per halt: a second releaser (or
			// a stale entry naming a vCPU that already woke) finds it running.
			uint32_t halted = kHalted;
			if (owner < kMaxCpus &&
			    __atomic_compare_exchange_n(&state_[owner], &halted, kRunning, false, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				P::kick(cpu, owner);
		}
		noteLocksHeld<P, true>(cpu, -1);
	}

	uint32_t id() const { return id_; }
	const volatile uint32_t *servingWord() const { return &serving_; }

private:
	static constexpr uint32_t kRunning = 0;
	static constexpr uint32_t kHalted = 1;

	static uint32_t haltThreshold()
	{
		uint32_t threshold = P::spinThreshold();
		return threshold != 0 ? threshold : kDefaultThreshold;
	}

	// The waiter's half: publish "halted", re-check, then wait on the serving word for as long
	// as it holds the value seen. Returns when the wait returns, for the caller to re-check.
	void halt(uint32_t cpu, uint32_t ticket)
	{
		__atomic_store_n(&state_[cpu], kHalted, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		uint32_t serving = __atomic_load_n(&serving_, __ATOMIC_ACQUIRE);
		if (serving != ticket)
			P::waitOn(cpu, &serving_, serving, kWaitTimeoutNs);
		__atomic_store_n(&state_[cpu], kRunning, __ATOMIC_RELAXED);
	}

	// The vCPU that drew `ticket`, or kNoCpu if unknown (a hint, and whom to kick).
	uint32_t ownerOf(uint32_t ticket) const
	{
		return __atomic_load_n(&turnOwner_[ticket % kMaxCpus], __ATOMIC_RELAXED) - 1;
	}

	uint32_t id_;
	uint32_t next_ = 0;
	// The word waiters PV-wait on: the host parks a waiter only while it still holds the value
	// the waiter saw. On its own cache line, away from the ticket dispenser newcomers write.
	alignas(64) uint32_t serving_ = 0;
	// cpu + 1 of the vCPU holding each ticket, 0 = unknown; zero-initialised (no constructors).
	alignas(64) uint32_t turnOwner_[kMaxCpus] = {};
	// Per vCPU: kHalted while it is about to wait or waiting, else kRunning.
	uint32_t state_[kMaxCpus] = {};
};

} // namespace spindle::locks

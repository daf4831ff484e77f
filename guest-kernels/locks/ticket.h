#pragma once

// Ticket locks: the classic FIFO ticket lock, and pvticket, the same lock enlightened for
// Spindle (see spin_wait.h for what "enlightened" adds).
//
// FIFO order is exactly what makes a ticket lock the classic lock-waiter-preemption victim: when
// the vCPU whose turn it is gets preempted, the lock is free and nobody may take it. So pvticket
// records which vCPU drew each ticket and names the vCPU whose turn it is (the holder, or the
// preempted next-in-line) in its hints and long-spin notifications.

#include "guest-kernels/locks/spin_wait.h"

namespace spindle::locks {

template<typename P, bool Enlightened>
class BasicTicketLock
{
public:
	constexpr explicit BasicTicketLock(uint32_t id = 0) : id_(id) {}

	// Returns the spin iterations this acquisition took.
	uint64_t acquire(uint32_t cpu)
	{
		uint32_t ticket = __atomic_fetch_add(&next_, 1, __ATOMIC_RELAXED);
		if constexpr (Enlightened) {
			// At most one ticket per vCPU is outstanding, so kMaxCpus slots never collide.
			__atomic_store_n(&turnOwner_[ticket % kMaxCpus], cpu + 1, __ATOMIC_RELAXED);
		}

		SpinWait<P, Enlightened> wait(cpu, id_);
		for (;;) {
			uint32_t serving = __atomic_load_n(&serving_, __ATOMIC_ACQUIRE);
			if (serving == ticket)
				break;
			wait.spin(ownerOf(serving));
		}
		uint64_t spins = wait.finish();
		noteLocksHeld<P, Enlightened>(cpu, +1);
		return spins;
	}

	void release(uint32_t cpu)
	{
		// Only the holder writes serving_, so a plain read-increment-store is enough.
		uint32_t serving = __atomic_load_n(&serving_, __ATOMIC_RELAXED);
		__atomic_store_n(&serving_, serving + 1, __ATOMIC_RELEASE);
		// After the release, not before: a hint that says "held" a moment too long costs a
		// little slice extension, one that says "free" too early invites holder preemption.
		noteLocksHeld<P, Enlightened>(cpu, -1);
	}

	uint32_t id() const { return id_; }

private:
	// The vCPU that drew `ticket`, or kNoCpu if it has not written its slot yet (a hint only).
	uint32_t ownerOf([[maybe_unused]] uint32_t ticket) const
	{
		if constexpr (Enlightened)
			return __atomic_load_n(&turnOwner_[ticket % kMaxCpus], __ATOMIC_RELAXED) - 1;
		else
			return kNoCpu;
	}

	uint32_t id_;
	uint32_t next_ = 0;
	uint32_t serving_ = 0;
	// cpu + 1 of the vCPU holding each ticket, 0 = unknown (zero-initialised, so no constructor
	// code is needed in the guests). Only the enlightened lock writes it.
	uint32_t turnOwner_[Enlightened ? kMaxCpus : 1] = {};
};

template<typename P>
using TicketLock = BasicTicketLock<P, false>;

template<typename P>
using PvTicketLock = BasicTicketLock<P, true>;

} // namespace spindle::locks

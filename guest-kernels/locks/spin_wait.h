#pragma once

// What every lock in this folder shares: the platform contract, the hint-slot writers and the
// spin-wait loop body.
//
// These headers compile both freestanding (inside the guests) and hosted (in std::thread unit
// tests), so they use only <stdint.h>, <stddef.h> and the __atomic builtins.
//
// A lock is parameterised by a Platform type P with static members:
//   static void pause(uint32_t cpu);          one spin iteration's delay (PAUSE in a guest)
//   static uint32_t spinThreshold();          spins before a long-spin notification; 0 = never
//   static spindle_hint_slot *hintSlot(uint32_t cpu);  this vCPU's hint slot, or nullptr
//   static void notifyLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins);
// A lock that blocks (pvhalt.h) also needs
//   static void waitOn(uint32_t cpu, const volatile uint32_t *word, uint32_t expected, uint64_t timeoutNs);
//   static void kick(uint32_t cpu, uint32_t target);
// with the semantics of the WAIT and KICK records (spindle_abi.h): waitOn may return at any time
// (a kick, a timeout, or at once), so a caller always re-checks what it waits for.
// The caller passes its vCPU index to acquire() and release() explicitly: the guests have no
// per-CPU register set up, and tests get to choose the index of each thread.

#include <stddef.h>
#include <stdint.h>

#include "guest-kernels/abi/spindle_abi.h"

namespace spindle::locks {

// Waiter arrays are sized for the largest VM the ABI allows.
inline constexpr uint32_t kMaxCpus = SPINDLE_MAX_VCPUS;
inline constexpr uint32_t kNoCpu = SPINDLE_VCPU_NONE;

// Writers for this vCPU's own hint slot, following the rules in spindle_abi.h: naturally aligned
// 32-bit stores, and seq bumped (release) after each change so the host sees the change first.
namespace hint {

inline void bumpSeq(spindle_hint_slot *slot)
{
	uint32_t seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->seq, seq + 1, __ATOMIC_RELEASE);
}

inline void addLocksHeld(spindle_hint_slot *slot, int32_t delta)
{
	uint32_t held = __atomic_load_n(&slot->locks_held, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->locks_held, held + static_cast<uint32_t>(delta), __ATOMIC_RELAXED);
	bumpSeq(slot);
}

inline void setWaiting(spindle_hint_slot *slot, uint32_t waitsOn, uint32_t lockId)
{
	// waiting_lock first: it is only meaningful while waiting_on names a vCPU.
	__atomic_store_n(&slot->waiting_lock, lockId, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->waiting_on, waitsOn, __ATOMIC_RELAXED);
	bumpSeq(slot);
}

inline void clearWaiting(spindle_hint_slot *slot)
{
	__atomic_store_n(&slot->waiting_on, kNoCpu, __ATOMIC_RELAXED);
	bumpSeq(slot);
}

} // namespace hint

// Publishes "this vCPU holds one more (or one less) spinlock" for an enlightened lock; compiles
// to nothing for the others, so the classic locks stay classic.
template<typename P, bool Enlightened>
inline void noteLocksHeld(uint32_t cpu, int32_t delta)
{
	if constexpr (Enlightened) {
		if (spindle_hint_slot *slot = P::hintSlot(cpu))
			hint::addLocksHeld(slot, delta);
	}
}

// One wait for one lock. Every iteration goes through spin(), which executes the platform's
// pause (so hardware Pause-Loop-Exiting sees the loop) and counts it. An enlightened wait also
// publishes whom it waits on (again whenever that changes) and, once past the threshold, sends
// exactly one long-spin notification (unless Notify is false: a lock that blocks instead of
// reporting its spin), then keeps waiting.
template<typename P, bool Enlightened, bool Notify = Enlightened>
class SpinWait
{
public:
	SpinWait(uint32_t cpu, uint32_t lockId) : cpu_(cpu), lockId_(lockId) {}

	// One iteration of waiting while waitsOn (or kNoCpu if unknown) is the vCPU in the way.
	void spin([[maybe_unused]] uint32_t waitsOn)
	{
		if constexpr (Enlightened)
			observe(waitsOn);
		P::pause(cpu_);
		spins_++;
	}

	// Ends the wait (clearing the waiting hint) and returns the iterations spun.
	uint64_t finish()
	{
		if constexpr (Enlightened) {
			if (slot_)
				hint::clearWaiting(slot_);
			slot_ = nullptr;
		}
		return spins_;
	}

private:
	void observe(uint32_t waitsOn)
	{
		if (spins_ == 0) {
			// Read lazily: an uncontended acquisition never pays for any of this.
			threshold_ = P::spinThreshold();
			slot_ = P::hintSlot(cpu_);
			if (slot_)
				hint::setWaiting(slot_, waitsOn, lockId_);
			waitsOn_ = waitsOn;
		} else if (waitsOn != waitsOn_) {
			if (slot_)
				hint::setWaiting(slot_, waitsOn, lockId_);
			waitsOn_ = waitsOn;
		}
		if constexpr (Notify) {
			if (!notified_ && threshold_ != 0 && spins_ >= threshold_) {
				notified_ = true;
				P::notifyLongSpin(cpu_, lockId_, waitsOn, spins_);
			}
		}
	}

	uint32_t cpu_;
	uint32_t lockId_;
	uint64_t spins_ = 0;
	uint32_t threshold_ = 0;
	uint32_t waitsOn_ = kNoCpu;
	bool notified_ = false;
	spindle_hint_slot *slot_ = nullptr;
};

} // namespace spindle::locks

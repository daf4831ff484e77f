#pragma once

// Parking of vCPU threads for the WAIT and KICK records (guest-kernels/abi/spindle_abi.h): a
// guest that has nothing to do but wait for a sibling asks the host to take its vCPU off the
// CPU, and a sibling wakes it with a kick, as Linux's pv_wait()/pv_kick() do on KVM.
//
// Two layers:
//   - VcpuParking: the pure state machine. Time is passed in, nothing blocks, so tests drive it
//     step by step. Each call touches the state of at most one vCPU (kick() is admitKick() on
//     the sender plus deliverKick() on the target), which is what lets the wrapper lock per vCPU.
//   - ParkingLot: the thread-safe wrapper a vCPU thread blocks in (parkUntilWoken), one mutex
//     and condition variable per vCPU, CLOCK_MONOTONIC (steady_clock) time.
//
// Bounded against a hostile guest: every park has a deadline (at most ParkingLimits::maxWaitNs),
// each vCPU keeps at most one pending kick (more are counted and dropped), the kicks each vCPU
// sends are rate-limited, and after stop no vCPU parks again.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/rate_limiter.h"
#include "spindle_abi.h"

namespace spindle {

struct ParkingLimits {
	uint64_t maxWaitNs = SPINDLE_PV_WAIT_MAX_NS; // longest park; 0 or more in a WAIT means this
	// Kicks one vCPU may send: a burst, then one per refill interval (200k/s sustained). A
	// legitimate waiter spins for its threshold before it waits, so each vCPU is woken far less
	// often than that; the limit only bounds the wake-ups (futex calls) a flood can cost.
	uint32_t kickBurst = 64;
	uint64_t kickRefillNs = 5'000;
};

// Why a WAIT returned (at once or after parking).
enum class WakeReason : uint8_t {
	Kick,           // a KICK woke it, or was pending when it asked
	ConditionFalse, // its word no longer held the value it waits on
	Timeout,        // its deadline passed
	Stopped,        // the VM stops
	OutOfRange,     // no such vCPU (a caller bug; never parks)
	AlreadyParked,  // it is parked already (only its own thread may wait: a caller bug)
};

const char *toString(WakeReason reason);

struct WaitDecision {
	bool park = false;                      // park until untilNs or a wake; else return now
	WakeReason reason = WakeReason::Kick;   // when !park: why not
	uint64_t untilNs = 0;                   // when park: the deadline
};

enum class KickResult : uint8_t {
	Woken,              // the target was parked and is runnable again
	Pending,            // the target was not parked: its next WAIT returns at once
	Coalesced,          // a kick was pending already: counted and dropped
	DroppedRateLimited, // the sender is over its rate: counted and dropped
	DroppedOutOfRange,  // no such vCPU: counted and dropped
	DroppedStopped,     // the VM stops: nobody parks any more
};

const char *toString(KickResult result);

// Per vCPU. Sender-side and target-side counts are kept apart, so each lives with the one vCPU
// whose lock the wrapper holds when it changes.
struct ParkingCounters {
	uint64_t waits = 0;               // WAITs this vCPU made
	uint64_t waitsReturnedAtOnce = 0; // of those, not parked: a pending kick, a false condition, a stop
	uint64_t wakesByKick = 0;         // parks ended by a KICK
	uint64_t waitTimeouts = 0;        // parks ended by their deadline
	uint64_t wakesByStop = 0;         // parks ended by the VM stopping
	uint64_t parkedNs = 0;            // time spent parked, over ended parks
	uint64_t kicks = 0;               // KICKs this vCPU sent
	uint64_t kicksDropped = 0;        // of those, dropped at the sender: rate limit, no such vCPU
	uint64_t kicksCoalesced = 0;      // KICKs to this vCPU dropped: one pending already, or stopped

	// Every dropped kick, wherever it was counted (the "kicks_dropped" metric).
	uint64_t allKicksDropped() const { return kicksDropped + kicksCoalesced; }
	ParkingCounters &operator+=(const ParkingCounters &other);
};

class VcpuParking
{
public:
	explicit VcpuParking(unsigned vcpuCount, ParkingLimits limits = {});

	unsigned vcpuCount() const { return static_cast<unsigned>(slots_.size()); }
	const ParkingLimits &limits() const { return limits_; }

	// A WAIT from `vcpu`. conditionHolds: the guest's word still equals the value it waits on
	// (true when the WAIT has no condition). timeoutNs 0 or above the cap means the cap. A
	// pending kick is consumed here, whatever the condition: it was meant for this wait.
	WaitDecision wait(unsigned vcpu, bool conditionHolds, uint64_t timeoutNs, uint64_t nowNs);

	// A KICK from `from` to `to`: admitKick() then, unless it dropped the kick, deliverKick().
	KickResult kick(unsigned from, unsigned to, uint64_t nowNs);
	// The sender's half (touches only `from`): counts the kick, applies the rate limit and the
	// range check. A value means the kick is dropped, with that result.
	std::optional<KickResult> admitKick(unsigned from, unsigned to, uint64_t nowNs);
	// The target's half (touches only `to`, which must be in range).
	KickResult deliverKick(unsigned to, uint64_t nowNs);

	// Ends the park of `vcpu` if its deadline has passed; true if it did.
	bool expire(unsigned vcpu, uint64_t nowNs);
	// expire() for every vCPU; returns how many woke.
	unsigned timeout(uint64_t nowNs);
	// The VM stops: wakes `vcpu` (stopAll: every vCPU); from now on its WAITs return at once
	// and kicks to it are dropped.
	void stop(unsigned vcpu, uint64_t nowNs);
	void stopAll(uint64_t nowNs);

	bool parked(unsigned vcpu) const { return slots_[vcpu].parked; }
	// Why the last park of `vcpu` ended (meaningful once it is not parked).
	WakeReason lastWake(unsigned vcpu) const { return slots_[vcpu].lastWake; }
	uint64_t deadlineNs(unsigned vcpu) const { return slots_[vcpu].untilNs; }
	// The earliest deadline of a parked vCPU; UINT64_MAX if none is parked.
	uint64_t nextDeadlineNs() const;

	const ParkingCounters &counters(unsigned vcpu) const { return slots_[vcpu].counters; }
	ParkingCounters totals() const;

private:
	struct Slot {
		bool parked = false;
		bool kickPending = false;
		bool stopped = false;
		uint64_t parkedSinceNs = 0;
		uint64_t untilNs = 0;
		WakeReason lastWake = WakeReason::Kick;
		ParkingCounters counters;
	};

	void endPark(Slot &slot, WakeReason reason, uint64_t nowNs);

	ParkingLimits limits_;
	std::vector<Slot> slots_;
	// One per sender. A deque because a RateLimiter (it holds a mutex) cannot move.
	std::deque<RateLimiter> kickLimits_;
};

// The thread-safe wrapper. A vCPU thread that decoded a WAIT calls parkUntilWoken() outside
// KVM_RUN; a thread that decoded a KICK calls kick(); the VM's stop calls stopAll().
class ParkingLot
{
public:
	explicit ParkingLot(unsigned vcpuCount, ParkingLimits limits = {});

	// Blocks the calling thread (vCPU `vcpu`'s own) until a kick, the deadline or stopAll();
	// returns at once if a kick is pending, conditionHolds is false or the lot is stopped.
	// conditionHolds may be read before the call: a kick that comes between that read and
	// the park is kept pending, and the park then returns at once, so no wake-up is lost.
	WakeReason parkUntilWoken(unsigned vcpu, bool conditionHolds, uint64_t timeoutNs);

	KickResult kick(unsigned from, unsigned to);
	void stopAll();

	unsigned vcpuCount() const { return core_.vcpuCount(); }
	bool parked(unsigned vcpu) const;
	ParkingCounters counters(unsigned vcpu) const;
	ParkingCounters totals() const;

	static uint64_t nowNs();

private:
	// Its own cache line each: vCPUs park and kick concurrently.
	struct alignas(64) Sync {
		mutable std::mutex mutex;
		std::condition_variable wake;
	};

	VcpuParking core_;
	std::unique_ptr<Sync[]> sync_;
};

} // namespace spindle

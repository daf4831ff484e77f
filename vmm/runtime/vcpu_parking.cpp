#include "vmm/runtime/vcpu_parking.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace spindle {

const char *toString(WakeReason reason)
{
	switch (reason) {
	case WakeReason::Kick: return "kick";
	case WakeReason::ConditionFalse: return "condition_false";
	case WakeReason::Timeout: return "timeout";
	case WakeReason::Stopped: return "stopped";
	case WakeReason::OutOfRange: return "out_of_range";
	case WakeReason::AlreadyParked: return "already_parked";
	}
	return "?";
}

const char *toString(KickResult result)
{
	switch (result) {
	case KickResult::Woken: return "woken";
	case KickResult::Pending: return "pending";
	case KickResult::Coalesced: return "coalesced";
	case KickResult::DroppedRateLimited: return "rate_limited";
	case KickResult::DroppedOutOfRange: return "out_of_range";
	case KickResult::DroppedStopped: return "stopped";
	}
	return "?";
}

ParkingCounters &ParkingCounters::operator+=(const ParkingCounters &o)
{
	waits += o.waits;
	waitsReturnedAtOnce += o.waitsReturnedAtOnce;
	wakesByKick += o.wakesByKick;
	waitTimeouts += o.waitTimeouts;
	wakesByStop += o.wakesByStop;
	parkedNs += o.parkedNs;
	kicks += o.kicks;
	kicksDropped += o.kicksDropped;
	kicksCoalesced += o.kicksCoalesced;
	return *this;
}

// ---- VcpuParking ------------------------------------------------------------------------------

VcpuParking::VcpuParking(unsigned vcpuCount, ParkingLimits limits) : limits_(limits), slots_(vcpuCount)
{
	// A cap of 0 would park nobody for any time at all; treat it as "no parking worth the
	// name" rather than as unbounded.
	limits_.maxWaitNs = std::max<uint64_t>(limits_.maxWaitNs, 1);
	for (unsigned i = 0; i < vcpuCount; ++i)
		kickLimits_.emplace_back(limits_.kickBurst, limits_.kickRefillNs);
}

WaitDecision VcpuParking::wait(unsigned vcpu, bool conditionHolds, uint64_t timeoutNs, uint64_t nowNs)
{
	if (vcpu >= slots_.size())
		return { false, WakeReason::OutOfRange, 0 };
	Slot &s = slots_[vcpu];
	s.counters.waits++;
	auto returnNow = [&s](WakeReason reason) {
		s.counters.waitsReturnedAtOnce++;
		return WaitDecision{ false, reason, 0 };
	};
	if (s.parked)
		return returnNow(WakeReason::AlreadyParked);
	if (s.stopped)
		return returnNow(WakeReason::Stopped);
	if (s.kickPending) {
		s.kickPending = false;
		return returnNow(WakeReason::Kick);
	}
	if (!conditionHolds)
		return returnNow(WakeReason::ConditionFalse);

	uint64_t timeout = timeoutNs == 0 ? limits_.maxWaitNs : std::min(timeoutNs, limits_.maxWaitNs);
	s.parked = true;
	s.parkedSinceNs = nowNs;
	s.untilNs = nowNs > UINT64_MAX - timeout ? UINT64_MAX : nowNs + timeout;
	return { true, WakeReason::Kick, s.untilNs };
}

std::optional<KickResult> VcpuParking::admitKick(unsigned from, unsigned to, uint64_t nowNs)
{
	if (from >= slots_.size())
		return KickResult::DroppedOutOfRange; // no such sender: nothing to count it on
	Slot &sender = slots_[from];
	sender.counters.kicks++;
	if (to >= slots_.size()) {
		sender.counters.kicksDropped++;
		return KickResult::DroppedOutOfRange;
	}
	if (!kickLimits_[from].allow(nowNs)) {
		sender.counters.kicksDropped++;
		return KickResult::DroppedRateLimited;
	}
	return std::nullopt;
}

KickResult VcpuParking::deliverKick(unsigned to, uint64_t nowNs)
{
	Slot &s = slots_[to];
	if (s.stopped) {
		s.counters.kicksCoalesced++;
		return KickResult::DroppedStopped;
	}
	if (s.parked) {
		endPark(s, WakeReason::Kick, nowNs);
		return KickResult::Woken;
	}
	if (s.kickPending) {
		s.counters.kicksCoalesced++;
		return KickResult::Coalesced;
	}
	s.kickPending = true;
	return KickResult::Pending;
}

KickResult VcpuParking::kick(unsigned from, unsigned to, uint64_t nowNs)
{
	if (auto dropped = admitKick(from, to, nowNs))
		return *dropped;
	return deliverKick(to, nowNs);
}

void VcpuParking::endPark(Slot &s, WakeReason reason, uint64_t nowNs)
{
	s.parked = false;
	s.lastWake = reason;
	s.counters.parkedNs += nowNs > s.parkedSinceNs ? nowNs - s.parkedSinceNs : 0;
	switch (reason) {
	case WakeReason::Kick: s.counters.wakesByKick++; break;
	case WakeReason::Timeout: s.counters.waitTimeouts++; break;
	case WakeReason::Stopped: s.counters.wakesByStop++; break;
	default: break;
	}
}

bool VcpuParking::expire(unsigned vcpu, uint64_t nowNs)
{
	Slot &s = slots_[vcpu];
	if (!s.parked || nowNs < s.untilNs)
		return false;
	endPark(s, WakeReason::Timeout, nowNs);
	return true;
}

unsigned VcpuParking::timeout(uint64_t nowNs)
{
	unsigned woken = 0;
	for (unsigned vcpu = 0; vcpu < slots_.size(); ++vcpu)
		woken += expire(vcpu, nowNs) ? 1 : 0;
	return woken;
}

void VcpuParking::stop(unsigned vcpu, uint64_t nowNs)
{
	Slot &s = slots_[vcpu];
	s.stopped = true;
	s.kickPending = false;
	if (s.parked)
		endPark(s, WakeReason::Stopped, nowNs);
}

void VcpuParking::stopAll(uint64_t nowNs)
{
	for (unsigned vcpu = 0; vcpu < slots_.size(); ++vcpu)
		stop(vcpu, nowNs);
}

uint64_t VcpuParking::nextDeadlineNs() const
{
	uint64_t next = UINT64_MAX;
	for (const Slot &s : slots_)
		if (s.parked)
			next = std::min(next, s.untilNs);
	return next;
}

ParkingCounters VcpuParking::totals() const
{
	ParkingCounters sum;
	for (const Slot &s : slots_)
		sum += s.counters;
	return sum;
}

// ---- ParkingLot -------------------------------------------------------------------------------

ParkingLot::ParkingLot(unsigned vcpuCount, ParkingLimits limits)
	: core_(vcpuCount, limits), sync_(std::make_unique<Sync[]>(vcpuCount))
{
}

uint64_t ParkingLot::nowNs()
{
	return static_cast<uint64_t>(
		std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
			.count());
}

WakeReason ParkingLot::parkUntilWoken(unsigned vcpu, bool conditionHolds, uint64_t timeoutNs)
{
	if (vcpu >= core_.vcpuCount())
		return WakeReason::OutOfRange;
	Sync &sync = sync_[vcpu];
	std::unique_lock lock(sync.mutex);
	WaitDecision decision = core_.wait(vcpu, conditionHolds, timeoutNs, nowNs());
	if (!decision.park)
		return decision.reason;
	// The state machine saturates deadlines at UINT64_MAX; a chrono duration is signed.
	const auto deadline = std::chrono::steady_clock::time_point(
		std::chrono::nanoseconds(std::min<uint64_t>(decision.untilNs, INT64_MAX / 2)));
	// The loop absorbs spurious condition-variable wake-ups: only the state machine says when
	// the park is over (a kick, stopAll, or expire() at the deadline).
	while (core_.parked(vcpu)) {
		sync.wake.wait_until(lock, deadline);
		core_.expire(vcpu, nowNs());
	}
	return core_.lastWake(vcpu);
}

KickResult ParkingLot::kick(unsigned from, unsigned to)
{
	if (from >= core_.vcpuCount())
		return KickResult::DroppedOutOfRange;
	const uint64_t now = nowNs();
	{
		// Never two vCPUs' locks at once (from may equal to), so there is no lock order to keep.
		std::lock_guard lock(sync_[from].mutex);
		if (auto dropped = core_.admitKick(from, to, now))
			return *dropped;
	}
	KickResult result;
	{
		std::lock_guard lock(sync_[to].mutex);
		result = core_.deliverKick(to, now);
	}
	if (result == KickResult::Woken)
		sync_[to].wake.notify_one();
	return result;
}

void ParkingLot::stopAll()
{
	for (unsigned vcpu = 0; vcpu < core_.vcpuCount(); ++vcpu) {
		{
			std::lock_guard lock(sync_[vcpu].mutex);
			core_.stop(vcpu, nowNs());
		}
		sync_[vcpu].wake.notify_one();
	}
}

bool ParkingLot::parked(unsigned vcpu) const
{
	if (vcpu >= core_.vcpuCount())
		return false;
	std::lock_guard lock(sync_[vcpu].mutex);
	return core_.parked(vcpu);
}

ParkingCounters ParkingLot::counters(unsigned vcpu) const
{
	if (vcpu >= core_.vcpuCount())
		return {};
	std::lock_guard lock(sync_[vcpu].mutex);
	return core_.counters(vcpu);
}

ParkingCounters ParkingLot::totals() const
{
	ParkingCounters sum;
	for (unsigned vcpu = 0; vcpu < core_.vcpuCount(); ++vcpu)
		sum += counters(vcpu);
	return sum;
}

} // namespace spindle

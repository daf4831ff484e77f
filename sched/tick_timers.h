#pragma once

// The scheduler thread's two timerfds: the periodic tick, whose period changes between the
// fast tick (--sched-tick) and the quiet tick (--quiet-tick), and the expiry timer, armed at
// the core's next expiry. Each re-arms the kernel timer only when what it asks for changed: on
// the PVM host a timerfd_settime costs about 4 us, and an unchanged expiry was re-armed on
// every tick and event before (a quarter of a quiet tick's system calls).

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"

namespace spindle::sched {

class TickTimers
{
public:
	static Result<TickTimers> create();

	int tickFd() const { return tick_.get(); }
	int expiryFd() const { return expiry_.get(); }

	// Starts the tick, or changes its period: the next tick comes periodNs from now.
	Status setTickPeriod(uint64_t periodNs);
	uint64_t tickPeriodNs() const { return tickPeriodNs_; }
	// The next tick at firstAtNs (CLOCK_MONOTONIC), then every periodNs: always re-arms (the
	// caller aligns the tick to a turn's end once per turn).
	Status alignTick(uint64_t firstAtNs, uint64_t periodNs);
	// The expiry timer fires at atNs (CLOCK_MONOTONIC); UINT64_MAX disarms it.
	void armExpiry(uint64_t atNs);
	// The expiry timer fired: the kernel disarmed it (one-shot), so the next armExpiry arms it.
	void expiryFired() { expiryAtNs_ = UINT64_MAX; }
	uint64_t expiryRearms() const { return expiryRearms_; }

private:
	TickTimers(UniqueFd tick, UniqueFd expiry) : tick_(std::move(tick)), expiry_(std::move(expiry)) {}

	UniqueFd tick_, expiry_;
	uint64_t tickPeriodNs_ = 0;
	uint64_t expiryAtNs_ = UINT64_MAX; // what the kernel timer is armed for (disarmed at first)
	uint64_t expiryRearms_ = 0;
	bool tickAligned_ = false; // armed by alignTick: the period alone does not say the phase
};

} // namespace spindle::sched

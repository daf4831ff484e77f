#pragma once

// The fast tick's back-off. On the PVM host every wake of the scheduler thread preempts a vCPU
// thread, and each such preemption costs the guests about 30 us of their CPU time (the exit,
// the switch and the re-entry); with VMs spinning at 1 ms ticks that came to 3-5% of every VM's
// throughput, a co-runner's included (BENCHMARKS.md "The fast tick's back-off"). Most fast
// ticks find nothing to do, so a tick that saw no activity (no spin wait detected, no boost
// granted since the previous tick) doubles the period, up to the ceiling; any activity, at a
// tick or between ticks (a PV long-spin report wakes the scheduler at once), brings the
// period back to the fast tick. Pure: the caller re-arms the timer with periodNs().

#include <cstdint>

namespace spindle::sched {

class TickBackoff
{
public:
	// ceilingNs <= fastNs turns the back-off off (the period stays fastNs).
	TickBackoff(uint64_t fastNs, uint64_t ceilingNs);

	// A tick ran; activity is the core's activity counter after it (SchedCore::activity()).
	void afterTick(uint64_t activity);
	// An event was handled between ticks; activity as above.
	void afterEvent(uint64_t activity);
	// The period the tick should have now.
	uint64_t periodNs() const { return periodNs_; }

private:
	const uint64_t fastNs_, ceilingNs_;
	uint64_t periodNs_;
	uint64_t lastActivity_ = 0;
};

} // namespace spindle::sched

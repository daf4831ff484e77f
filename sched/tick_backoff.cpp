#include "sched/tick_backoff.h"

#include <algorithm>

namespace spindle::sched {

TickBackoff::TickBackoff(uint64_t fastNs, uint64_t ceilingNs)
	: fastNs_(fastNs), ceilingNs_(std::max(fastNs, ceilingNs)), periodNs_(fastNs)
{
}

void TickBackoff::afterTick(uint64_t activity)
{
	if (activity != lastActivity_)
		periodNs_ = fastNs_;
	else
		periodNs_ = std::min(periodNs_ * 2, ceilingNs_);
	lastActivity_ = activity;
}

void TickBackoff::afterEvent(uint64_t activity)
{
	if (activity == lastActivity_)
		return;
	periodNs_ = fastNs_;
	lastActivity_ = activity;
}

} // namespace spindle::sched

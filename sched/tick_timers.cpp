#include "sched/tick_timers.h"

#include <sys/timerfd.h>

#include <algorithm>

namespace spindle::sched {

namespace {

timespec toTimespec(uint64_t ns)
{
	return { static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000) };
}

} // namespace

Result<TickTimers> TickTimers::create()
{
	UniqueFd tick(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!tick.isValid())
		return Error::fromErrno("creating the scheduler's tick timerfd");
	UniqueFd expiry(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!expiry.isValid())
		return Error::fromErrno("creating the scheduler's expiry timerfd");
	return TickTimers(std::move(tick), std::move(expiry));
}

Status TickTimers::setTickPeriod(uint64_t periodNs)
{
	if (periodNs == 0)
		return Error::invalid("a scheduler tick of 0 ns");
	if (periodNs == tickPeriodNs_ && !tickAligned_)
		return {};
	itimerspec period{};
	period.it_interval = toTimespec(periodNs);
	period.it_value = period.it_interval;
	if (timerfd_settime(tick_.get(), 0, &period, nullptr) != 0)
		return Error::fromErrno("arming the scheduler tick");
	tickPeriodNs_ = periodNs;
	tickAligned_ = false;
	return {};
}

Status TickTimers::alignTick(uint64_t firstAtNs, uint64_t periodNs)
{
	if (periodNs == 0)
		return Error::invalid("a scheduler tick of 0 ns");
	itimerspec when{};
	when.it_interval = toTimespec(periodNs);
	when.it_value = toTimespec(std::max<uint64_t>(firstAtNs, 1)); // 0 would disarm it
	if (timerfd_settime(tick_.get(), TFD_TIMER_ABSTIME, &when, nullptr) != 0)
		return Error::fromErrno("aligning the scheduler tick");
	tickPeriodNs_ = periodNs;
	tickAligned_ = true;
	return {};
}

void TickTimers::armExpiry(uint64_t atNs)
{
	if (atNs == expiryAtNs_)
		return;
	itimerspec when{};
	// An it_value of zero disarms: an expiry due at time 0 (long past) fires at 1 ns instead.
	if (atNs != UINT64_MAX)
		when.it_value = toTimespec(std::max<uint64_t>(atNs, 1));
	if (timerfd_settime(expiry_.get(), TFD_TIMER_ABSTIME, &when, nullptr) == 0) {
		expiryAtNs_ = atNs;
		expiryRearms_++;
	}
}

} // namespace spindle::sched

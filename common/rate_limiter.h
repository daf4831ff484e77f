#pragma once

// A token bucket: allows a burst, then a steady rate, and counts what it refused. Time is passed
// in (nanoseconds, any monotonic origin) so it is pure and testable. Guests are hostile: anything
// a guest can trigger and that reaches a log goes through one of these.

#include <algorithm>
#include <cstdint>
#include <mutex>

namespace spindle {

class RateLimiter
{
public:
	RateLimiter(uint32_t burst, uint64_t refillIntervalNs)
		: burst_(burst), tokens_(burst), refillIntervalNs_(refillIntervalNs)
	{
	}

	// True if an event at time nowNs may pass.
	bool allow(uint64_t nowNs)
	{
		std::lock_guard lock(mutex_);
		if (refillIntervalNs_ > 0 && nowNs > lastRefillNs_) {
			const uint64_t earned = (nowNs - lastRefillNs_) / refillIntervalNs_;
			if (earned > 0) {
				tokens_ = static_cast<uint32_t>(std::min<uint64_t>(burst_, tokens_ + earned));
				lastRefillNs_ += earned * refillIntervalNs_;
			}
		}
		if (tokens_ == 0) {
			++refused_;
			return false;
		}
		--tokens_;
		return true;
	}

	uint64_t refused() const
	{
		std::lock_guard lock(mutex_);
		return refused_;
	}

private:
	mutable std::mutex mutex_;
	uint32_t burst_;
	uint32_t tokens_;
	uint64_t refillIntervalNs_;
	uint64_t lastRefillNs_ = 0;
	uint64_t refused_ = 0;
};

} // namespace spindle

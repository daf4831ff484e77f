#include "sched/sampling/sample_history.h"

#include <bit>
#include <string>

namespace spindle::sched::sampling {

Status validateConfig(const SampleHistoryConfig &c)
{
	if (c.window < 1 || c.window > 64)
		return Error::invalid("sample window must be 1..64 samples, not " + std::to_string(c.window));
	if (c.spinLow > c.spinHigh)
		return Error::invalid("spin-low (" + std::to_string(c.spinLow) + ") must not exceed spin-high (" +
				      std::to_string(c.spinHigh) + ")");
	if (c.spinHigh >= c.window)
		return Error::invalid("spin-high (" + std::to_string(c.spinHigh) + ") must be below the window (" +
				      std::to_string(c.window) + " samples), or nothing is ever spinning");
	if (c.nearBytes == 0)
		return Error::invalid("the RIP window must not be empty");
	return {};
}

unsigned SampleHistory::spinLikeInWindow() const
{
	uint64_t mask = config_.window >= 64 ? ~uint64_t{0} : (uint64_t{1} << config_.window) - 1;
	return static_cast<unsigned>(std::popcount(bits_ & mask));
}

bool SampleHistory::staysNear(const VcpuSample &s) const
{
	if (!havePrevious_)
		return false;
	uint64_t a = s.rip, b = previous_.rip;
	uint64_t distance = a > b ? a - b : b - a;
	return distance <= config_.nearBytes || s.verdict.inLoop(b) || previous_.verdict.inLoop(a);
}

SampleOutcome SampleHistory::feed(const VcpuSample &s)
{
	SampleOutcome out;
	bool wasSpinning = spinning_;
	// Time that goes backwards (it should not) counts as no gap at all.
	if (havePrevious_ && s.timeNs > previous_.timeNs && s.timeNs - previous_.timeNs > config_.staleNs) {
		bits_ = 0;
		havePrevious_ = false;
		spinning_ = false;
	}

	out.spinLike = s.verdict.spin() && staysNear(s);
	bits_ = (bits_ << 1) | (out.spinLike ? 1 : 0);
	unsigned count = spinLikeInWindow();
	if (count < config_.spinLow)
		spinning_ = false;
	else if (count > config_.spinHigh)
		spinning_ = true;

	out.spinning = spinning_;
	out.entered = spinning_ && !wasSpinning;
	out.left = !spinning_ && wasSpinning;
	if (out.entered || (spinning_ && out.spinLike && s.timeNs - lastReportNs_ >= config_.reportIntervalNs)) {
		out.report = true;
		lastReportNs_ = s.timeNs;
	}

	seenTprZero_ = seenTprZero_ || s.cr8 == 0;
	seenTprRaised_ = seenTprRaised_ || s.cr8 > 0;
	hints_.cpl = s.cpl;
	hints_.cr8 = s.cr8;
	hints_.tprInUse = seenTprZero_ && seenTprRaised_;
	hints_.likelyHoldsLock = hints_.tprInUse && s.cr8 > 0;

	previous_ = s;
	havePrevious_ = true;
	samples_++;
	return out;
}

void SampleHistory::reset()
{
	bits_ = 0;
	havePrevious_ = false;
	spinning_ = false;
}

} // namespace spindle::sched::sampling

#include "sched/sampling/vcpu_sampler.h"

#include <algorithm>

#include "sched/sampling/spin_classifier.h"

namespace spindle::sched::sampling {

Result<std::unique_ptr<VcpuSampler>> VcpuSampler::open(pid_t tid, const SamplingConfig &config)
{
	if (auto valid = validateConfig(config.history); !valid)
		return valid.error();
	const uint64_t period = 1'000'000'000ull / std::max<uint32_t>(config.rateHz, 1);
	auto sampler = PerfRipSampler::open(tid, period);
	if (!sampler)
		return sampler.error();
	return std::unique_ptr<VcpuSampler>(new VcpuSampler(std::move(*sampler), config, period));
}

VcpuSampler::VcpuSampler(PerfRipSampler sampler, const SamplingConfig &config, uint64_t basePeriodNs)
	: sampler_(std::move(sampler)), history_(config.history), basePeriodNs_(basePeriodNs), periodNs_(basePeriodNs)
{
}

DrainResult VcpuSampler::drain(const SamplingTarget &target, unsigned vcpu)
{
	DrainResult result;
	bool sawSpinLike = false;
	const GuestPageWalker walker(target.ram, target.paging);
	const uint8_t cr8 = target.cr8 ? target.cr8[vcpu] : 0;
	sampler_.drain([&](const PerfRipSample &s) {
		if (!s.guest)
			return; // the vCPU thread in the host (an exit being handled): says nothing of the guest
		// A RIP inside the loop found last time is in that loop still: no second walk.
		if (!lastVerdict_.inLoop(s.ip))
			lastVerdict_ = classifyAt(walker, s.ip);
		const SampleOutcome outcome =
			history_.feed({s.timeNs, s.ip, static_cast<uint8_t>(s.guestKernel ? 0 : 3), cr8, lastVerdict_});
		result.samples++;
		sawSpinLike = sawSpinLike || outcome.spinLike;
		result.report = result.report || outcome.report;
	});
	result.hints = history_.hints();
	adaptRate(sawSpinLike, result.samples > 0);
	return result;
}

void VcpuSampler::adaptRate(bool sawSpinLike, bool sawSamples)
{
	uint64_t wanted = periodNs_;
	if (sawSpinLike) {
		quietDrains_ = 0;
		wanted = basePeriodNs_;
	} else if (sawSamples && ++quietDrains_ >= kBackoffDrains) {
		quietDrains_ = 0;
		wanted = std::min(periodNs_ * 2, basePeriodNs_ * kMaxBackoff);
	}
	if (wanted != periodNs_ && sampler_.setPeriod(wanted))
		periodNs_ = wanted;
}

} // namespace spindle::sched::sampling

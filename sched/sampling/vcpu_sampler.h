#pragma once

// The sampling spin detector for one vCPU: its perf ring of RIP samples, the classification of
// each sample's instruction bytes, the two-threshold history, and the rate it samples at.
// Drained by the scheduler thread every tick.
//
// The rate backs off while nothing spins: after kBackoffDrains drains that held samples but
// none spin-like, the period doubles (at most kMaxBackoff times the base); the first spin-like
// sample puts it back. A vCPU that never spins then costs its guest an eighth of the base rate's
// samples (about 13 us each here).

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "common/result.h"
#include "sched/sampling/guest_page_walk.h"
#include "sched/sampling/perf_rip_sampler.h"
#include "sched/sampling/sample_history.h"

namespace spindle::sched::sampling {

struct SamplingConfig {
	uint32_t rateHz = 1000; // samples per second of the vCPU's running time, before back-off
	SampleHistoryConfig history;
};

// What the host lets the detector read of one VM.
struct SamplingTarget {
	GuestRam ram;
	PagingRegisters paging;                  // the guest's at boot (Spindle's guests keep them)
	const volatile uint8_t *cr8 = nullptr;   // per vCPU, kvm_run->cr8 as of its last exit; may be null
};

struct DrainResult {
	uint64_t samples = 0;  // guest samples classified
	bool report = false;   // a spin wait to report now
	SampledHints hints;    // CPL and CR8 as of the last sample
};

class VcpuSampler
{
public:
	static constexpr unsigned kBackoffDrains = 50;
	static constexpr unsigned kMaxBackoff = 8;

	static Result<std::unique_ptr<VcpuSampler>> open(pid_t tid, const SamplingConfig &config);

	DrainResult drain(const SamplingTarget &target, unsigned vcpu);
	uint64_t periodNs() const { return periodNs_; }

private:
	VcpuSampler(PerfRipSampler sampler, const SamplingConfig &config, uint64_t basePeriodNs);
	void adaptRate(bool sawSpinLike, bool sawSamples);

	PerfRipSampler sampler_;
	SampleHistory history_;
	SpinVerdict lastVerdict_; // reused while the RIP stays inside its loop
	uint64_t basePeriodNs_;
	uint64_t periodNs_;
	unsigned quietDrains_ = 0;
};

} // namespace spindle::sched::sampling

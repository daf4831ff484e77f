#pragma once

// The per-vCPU history of RIP samples and its two-threshold classification (the patent's:
// below the low threshold not spinning, above the high one spinning, in between unchanged),
// plus the unenlightened hints that come with the same samples (CPL, CR8/TPR).
//
// A sample is *spin-like* when the classifier says its RIP is in a spin loop and the RIP stayed
// where the previous sample was (within nearBytes of it, or inside the loop either verdict
// found): a vCPU that keeps being caught in the same short loop is waiting, one caught in a spin
// loop once, between unrelated code, is not (yet). The classification looks at how many of the
// last `window` samples were spin-like. Pure: time comes in with the samples.

#include <cstdint>

#include "common/result.h"
#include "sched/sampling/spin_classifier.h"

namespace spindle::sched::sampling {

struct SampleHistoryConfig {
	// The defaults are the scheduler's (sched/options.h; sched/sampling/README.md says why).
	unsigned window = 3;   // samples looked back on, 1..64
	unsigned spinLow = 1;  // fewer spin-like samples than this in the window: not spinning
	unsigned spinHigh = 1; // more than this: spinning (so 2 of the last 3 by default)
	uint64_t nearBytes = 64;
	uint64_t reportIntervalNs = 1'000'000; // while it stays spinning, one report per interval
	uint64_t staleNs = 50'000'000;         // a longer gap between two samples forgets the history
};

// spinLow <= spinHigh < window <= 64, nearBytes > 0.
Status validateConfig(const SampleHistoryConfig &config);

struct VcpuSample {
	uint64_t timeNs = 0;
	uint64_t rip = 0;
	uint8_t cpl = 0; // privilege level at the sample (CS.RPL)
	uint8_t cr8 = 0; // task priority (kvm_run->cr8, or kvm_sregs.cr8), 0..15
	SpinVerdict verdict; // classifyAt(walker, rip)
};

struct SampleOutcome {
	bool spinLike = false; // this sample counted toward spinning
	bool spinning = false; // the classification after this sample
	bool entered = false;  // ... which this sample turned on
	bool left = false;     // ... or off (also when a stale gap forgot the history)
	// Report a spin wait now: on entering, then at most once per reportIntervalNs while it stays,
	// and only on a spin-like sample (the high threshold's hysteresis keeps "spinning" on for a
	// few samples after the loop was left; those are not reported).
	bool report = false;
};

// Hints of lesser confidence than the hint page: the guest does not say them, they are read off
// its state. A raised TPR is how Windows takes spinlocks (IRQL DISPATCH_LEVEL); a guest that
// never changes CR8 says nothing by it, so it counts only once the guest was seen using it.
struct SampledHints {
	uint8_t cpl = 0;
	uint8_t cr8 = 0;
	bool tprInUse = false;        // seen both at CR8 == 0 and CR8 > 0
	bool likelyHoldsLock = false; // tprInUse and CR8 > 0 at the last sample
	bool kernelMode() const { return cpl == 0; }
};

class SampleHistory
{
public:
	explicit SampleHistory(const SampleHistoryConfig &config = {}) : config_(config) {}

	SampleOutcome feed(const VcpuSample &sample);

	// Forget the samples (the vCPU halted, was reset, or its thread stopped running for long);
	// the TPR observation is kept, it says how the guest uses CR8.
	void reset();

	bool spinning() const { return spinning_; }
	unsigned spinLikeInWindow() const;
	const SampledHints &hints() const { return hints_; }
	uint64_t samples() const { return samples_; }

private:
	bool staysNear(const VcpuSample &sample) const;

	SampleHistoryConfig config_;
	uint64_t bits_ = 0; // bit 0 = the latest sample, 1 = spin-like
	bool havePrevious_ = false;
	VcpuSample previous_;
	bool spinning_ = false;
	uint64_t lastReportNs_ = 0;
	uint64_t samples_ = 0;
	bool seenTprZero_ = false;
	bool seenTprRaised_ = false;
	SampledHints hints_;
};

} // namespace spindle::sched::sampling

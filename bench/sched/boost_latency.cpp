// Latency from a spin report to the boosted thread running, on real threads.
//
// A "waiter" thread is starved on CPU 0 behind a SCHED_FIFO hog (so it is runnable, not
// running: the de-scheduled sibling). This thread, on CPU 1, reports a spin wait of a sibling to
// the policy core (coboost), applies the resulting actions with the host actuator and waits for
// the waiter to publish the time it resumed after the report. Prints the median and the 90th
// percentile per boost class, and how long the boosted thread's first burst of CPU lasted
// against its budget. Not a test: it prints numbers.
//
// The waiter publishes when it *resumed* (the first loop iteration after a gap), not the time it
// last ran: a deadline boost may land the waiter on this thread's CPU (its affinity is the whole
// machine while boosted) and starve the measuring loop until the kernel throttles it, and the
// last-ran time would then measure the throttle, not the boost.

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "sched/actuator.h"
#include "sched/core.h"

using namespace spindle::sched;

namespace {

uint64_t nowNs()
{
	return spindle::monotonicNs();
}

class RealClock : public Clock
{
public:
	uint64_t nowNs() const override { return ::nowNs(); }
};

// A loop iteration longer than this means the thread was off its CPU in between.
constexpr uint64_t kGapNs = 20'000;

struct Worker {
	std::atomic<pid_t> tid{ 0 };
	std::atomic<uint64_t> lastSeen{ 0 };
	std::atomic<uint64_t> armedAt{ UINT64_MAX }; // the measured round's spin report
	std::atomic<uint64_t> resumedAt{ 0 };        // first iteration after the first gap since armedAt
	std::atomic<uint64_t> burstEndAt{ 0 };       // last iteration before the gap that ended that run
	std::atomic<bool> stop{ false };
	std::thread thread;
	Worker()
	{
		thread = std::thread([this] {
			tid = gettid();
			uint64_t previous = nowNs();
			while (!stop.load(std::memory_order_relaxed)) {
				uint64_t now = nowNs();
				if (now - previous > kGapNs && now >= armedAt.load(std::memory_order_relaxed)) {
					if (resumedAt.load(std::memory_order_relaxed) == 0)
						resumedAt.store(now, std::memory_order_relaxed);
					else if (burstEndAt.load(std::memory_order_relaxed) == 0)
						burstEndAt.store(previous, std::memory_order_relaxed);
				}
				lastSeen.store(now, std::memory_order_relaxed);
				previous = now;
			}
		});
		while (tid.load() == 0)
			std::this_thread::yield();
	}
	~Worker()
	{
		stop = true;
		thread.join();
	}
};

int measure(BoostClass cls, const char *name, int rounds)
{
	RealClock clock;
	SchedulerOptions o;
	o.policy = PolicyKind::Coboost;
	o.repayPercent = 100;
	SchedCore core(o, { 0 }, clock);
	HostActuator actuator(cls, 20);
	Worker hog, waiter;
	// Pin this thread only now: the workers keep the whole machine as their original affinity,
	// which a deadline boost needs.
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(1, &one);
	sched_setaffinity(0, sizeof(one), &one);
	int vm = core.addVm("lat", 2, nullptr);
	pid_t tids[2] = { hog.tid.load(), waiter.tid.load() };
	if (!actuator.track(tids[0], 0).ok() || !actuator.track(tids[1], 0).ok())
		return 1;
	SchedAttr fifo;
	fifo.policy = SCHED_FIFO;
	fifo.priority = 5;
	if (!setSchedAttr(tids[0], fifo).ok()) {
		std::printf("%s: skipped (no SCHED_FIFO permission)\n", name);
		return 0;
	}
	std::vector<uint64_t> samples;
	std::vector<uint64_t> applied; // decision + system calls alone
	std::vector<uint64_t> bursts;  // the boosted waiter's first run after the boost
	for (int r = 0; r < rounds; ++r) {
		std::this_thread::sleep_for(std::chrono::milliseconds(3));
		core.vcpuState({ vm, 0 }, VcpuState::Running, 0);
		core.vcpuState({ vm, 1 }, VcpuState::Runnable, 0);
		waiter.resumedAt = 0;
		waiter.burstEndAt = 0;
		uint64_t t0 = nowNs();
		if (waiter.lastSeen.load() > t0 - 2'000'000)
			continue; // the waiter ran recently (RT throttling window): not starved, skip
		waiter.armedAt = t0;
		core.spinDetected({ vm, 0 }, SpinSource::Ple);
		for (const Action &a : core.takeActions())
			(void)actuator.apply(a, tids[a.who.vcpu]);
		applied.push_back(nowNs() - t0);
		uint64_t resumed;
		while ((resumed = waiter.resumedAt.load()) < t0 && nowNs() - t0 < 50'000'000)
			;
		if (resumed >= t0)
			samples.push_back(resumed - t0);
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
		core.expire();
		for (const Action &a : core.takeActions())
			(void)actuator.apply(a, tids[a.who.vcpu]);
		// A FIFO boost lasts until the expiry above; a deadline boost until the kernel
		// throttles it, whichever CPU it runs on and whether or not this thread got to run.
		uint64_t burstEnd = 0;
		while (resumed >= t0 && (burstEnd = waiter.burstEndAt.load()) == 0 && nowNs() - t0 < 50'000'000)
			;
		if (resumed >= t0 && burstEnd > resumed)
			bursts.push_back(burstEnd - resumed);
		waiter.armedAt = UINT64_MAX;
		std::this_thread::sleep_for(std::chrono::milliseconds(3)); // debt repaid
		core.tick();
		core.takeActions();
		(void)setSchedAttr(tids[0], fifo);
	}
	actuator.restoreAll();
	cpu_set_t all;
	CPU_ZERO(&all);
	for (unsigned cpu = 0; cpu < std::thread::hardware_concurrency(); ++cpu)
		CPU_SET(cpu, &all);
	sched_setaffinity(0, sizeof(all), &all);
	if (samples.empty()) {
		std::printf("%s: no samples\n", name);
		return 0;
	}
	std::sort(samples.begin(), samples.end());
	std::sort(applied.begin(), applied.end());
	std::sort(bursts.begin(), bursts.end());
	std::printf("%s: decision + actuation system calls: median %.1f us\n", name,
		    static_cast<double>(applied[applied.size() / 2]) / 1000.0);
	std::printf("%s%s: spin report -> boosted thread running: median %.1f us, p90 %.1f us (%zu samples)\n",
		    name, actuator.fifoFallbackUsed() ? " (fell back to fifo)" : "",
		    static_cast<double>(samples[samples.size() / 2]) / 1000.0,
		    static_cast<double>(samples[samples.size() * 9 / 10]) / 1000.0, samples.size());
	if (!bursts.empty())
		std::printf("%s: boosted thread's first run after the boost (%zu of %zu boosts): median %.1f us, "
			    "longest %.1f us (budget %.0f us, expiry after 2 ms)\n",
			    name, bursts.size(), samples.size(),
			    static_cast<double>(bursts[bursts.size() / 2]) / 1000.0,
			    static_cast<double>(bursts.back()) / 1000.0,
			    static_cast<double>(o.boostSliceNs) / 1000.0);
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? std::atoi(argv[1]) : 100;
	if (std::thread::hardware_concurrency() < 2) {
		std::printf("needs two CPUs\n");
		return 0;
	}
	int rc = measure(BoostClass::Deadline, "deadline", rounds);
	rc |= measure(BoostClass::Fifo, "fifo", rounds);
	return rc;
}

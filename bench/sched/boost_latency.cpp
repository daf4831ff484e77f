// Latency from a spin report to the boosted thread running, on real threads.
//
// A "waiter" thread is starved on CPU 0 behind a SCHED_FIFO hog (so it is runnable, not
// running: the de-scheduled sibling). This thread, on CPU 1, reports a spin wait of a sibling to
// the policy core (coboost), applies the resulting actions with the host actuator and waits for
// the waiter to publish a timestamp taken after the report. Prints the median and the 90th
// percentile per boost class. Not a test: it prints numbers.

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

struct Worker {
	std::atomic<pid_t> tid{ 0 };
	std::atomic<uint64_t> lastSeen{ 0 };
	std::atomic<bool> stop{ false };
	std::thread thread;
	Worker()
	{
		thread = std::thread([this] {
			tid = gettid();
			while (!stop.load(std::memory_order_relaxed))
				lastSeen.store(nowNs(), std::memory_order_relaxed);
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
	for (int r = 0; r < rounds; ++r) {
		std::this_thread::sleep_for(std::chrono::milliseconds(3));
		core.vcpuState({ vm, 0 }, VcpuState::Running, 0);
		core.vcpuState({ vm, 1 }, VcpuState::Runnable, 0);
		uint64_t t0 = nowNs();
		if (waiter.lastSeen.load() > t0 - 2'000'000)
			continue; // the waiter ran recently (RT throttling window): not starved, skip
		core.spinDetected({ vm, 0 }, SpinSource::Ple);
		for (const Action &a : core.takeActions())
			(void)actuator.apply(a, tids[a.who.vcpu]);
		applied.push_back(nowNs() - t0);
		uint64_t seen;
		while ((seen = waiter.lastSeen.load()) < t0 && nowNs() - t0 < 50'000'000)
			;
		if (seen >= t0)
			samples.push_back(seen - t0);
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
		core.expire();
		for (const Action &a : core.takeActions())
			(void)actuator.apply(a, tids[a.who.vcpu]);
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
	std::printf("%s: decision + actuation system calls: median %.1f us\n", name,
		    static_cast<double>(applied[applied.size() / 2]) / 1000.0);
	std::printf("%s%s: spin report -> boosted thread running: median %.1f us, p90 %.1f us (%zu samples)\n",
		    name, actuator.fifoFallbackUsed() ? " (fell back to fifo)" : "",
		    static_cast<double>(samples[samples.size() / 2]) / 1000.0,
		    static_cast<double>(samples[samples.size() * 9 / 10]) / 1000.0, samples.size());
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

// How long past its budget a boost that nobody ends lasts, when its alarm ends it
// (sched/boost_alarm.h): the scheduler thread is not involved at all, as if it were starved.
//
// A busy thread pinned to CPU 0 is boosted (budget 1 ms by default) among busy normal-class
// competitors on every CPU, and never unboosted; the alarm's handler, on the boosted thread,
// records when it put the thread back. Printed: how far past the budget that was (from the end of
// the boost system call), median, p90, p99 and the longest, and how many boosts the alarm did not
// end within 20 ms. Not a test: the numbers are the host's. Run as root (CAP_SYS_NICE).
//
//   sched-boost-alarm-latency [BOOSTS] [fifo|deadline] [BUDGET_US] [COMPETITORS]
// COMPETITORS: busy normal-class threads (default: one per CPU).

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "sched/actuator.h"

using namespace spindle::sched;
using spindle::monotonicNs;

namespace {

struct Busy {
	std::atomic<pid_t> tid{ 0 };
	std::atomic<bool> stop{ false };
	std::thread thread;
	Busy()
	{
		thread = std::thread([this] {
			tid = static_cast<pid_t>(syscall(SYS_gettid));
			while (!stop.load(std::memory_order_relaxed))
				;
		});
		while (tid.load() == 0)
			std::this_thread::yield();
	}
	~Busy()
	{
		stop = true;
		thread.join();
	}
};

double percentileUs(std::vector<uint64_t> sorted, double p)
{
	if (sorted.empty())
		return 0;
	std::sort(sorted.begin(), sorted.end());
	size_t at = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
	return static_cast<double>(sorted[at]) / 1e3;
}

} // namespace

int main(int argc, char **argv)
{
	const int boosts = argc > 1 ? std::atoi(argv[1]) : 200;
	const std::string mode = argc > 2 ? argv[2] : "fifo";
	const uint64_t budgetNs = (argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000) * 1000;
	if (boosts <= 0 || (mode != "fifo" && mode != "deadline") || budgetNs == 0 || budgetNs > 100'000'000) {
		std::fprintf(stderr, "usage: %s [BOOSTS > 0] [fifo|deadline] [BUDGET_US 1-100000] [COMPETITORS]\n", argv[0]);
		return 2;
	}
	const BoostClass boostClass = mode == "fifo" ? BoostClass::Fifo : BoostClass::Deadline;
	const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
	const int competitorCount = argc > 4 ? std::atoi(argv[4]) : static_cast<int>(cpus);
	if (competitorCount < 0 || competitorCount > 1024) {
		std::fprintf(stderr, "COMPETITORS: 0-1024\n");
		return 2;
	}

	std::vector<std::unique_ptr<Busy>> competitors;
	for (int i = 0; i < competitorCount; ++i)
		competitors.push_back(std::make_unique<Busy>());
	Busy boosted;
	HostActuator actuator(boostClass, 10);
	if (auto s = actuator.track(boosted.tid, 0); !s) {
		std::fprintf(stderr, "track: %s\n", s.error().message().c_str());
		return 1;
	}
	// Measure from the other CPU, so the boost on CPU 0 does not hold up the measuring.
	if (cpus >= 2) {
		cpu_set_t other;
		CPU_ZERO(&other);
		CPU_SET(1, &other);
		sched_setaffinity(0, sizeof(other), &other);
	}

	std::vector<uint64_t> past;
	int notEnded = 0, failed = 0;
	for (int i = 0; i < boosts; ++i) {
		if (auto s = actuator.boost(boosted.tid, budgetNs); !s) {
			if (failed++ == 0)
				std::fprintf(stderr, "boost: %s\n", s.error().message().c_str());
			continue;
		}
		const uint64_t applied = monotonicNs();
		std::this_thread::sleep_for(std::chrono::nanoseconds(budgetNs) + std::chrono::milliseconds(20));
		(void)actuator.unboost(boosted.tid); // takes the alarm's end, or ends a boost it missed
		const uint64_t ended = actuator.lastEndedByAlarmNs(boosted.tid);
		if (ended == 0) {
			notEnded++;
			continue;
		}
		past.push_back(ended > applied + budgetNs ? ended - applied - budgetNs : 0);
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	actuator.restoreAll();
	if (failed == boosts) {
		std::fprintf(stderr, "no boost could be applied (needs CAP_SYS_NICE)\n");
		return 1;
	}
	std::printf("class %s%s, budget %.0f us, %d boosts, alarm grace %.0f us, %d busy competitors\n", mode.c_str(),
		    actuator.fifoFallbackUsed() ? " (fell back to fifo)" : "", static_cast<double>(budgetNs) / 1e3,
		    boosts - failed, static_cast<double>(HostActuator::kAlarmGraceNs) / 1e3, competitorCount);
	std::printf("past the budget (us): median %.0f, p90 %.0f, p99 %.0f, longest %.0f; not ended by the alarm: %d\n",
		    percentileUs(past, 0.5), percentileUs(past, 0.9), percentileUs(past, 0.99), percentileUs(past, 1.0),
		    notEnded);
	return 0;
}

// What observing the vCPU threads costs the scheduler thread, per source of thread states
// (--thread-states proc: two /proc preads per thread per tick; switch: sched:sched_switch rings),
// at a number of vCPUs, with threads standing in for vCPUs (no KVM needed).
//
// Per run: N threads, pinned round-robin over CPUs 0-1 by the scheduler (cfs, every detector
// off, so a tick is observation plus a decision that does nothing), in one of two shapes:
//  - halting: each works 50 us then sleeps, the sleep chosen so that all N together ask for
//    one CPU: the switch rate (two per work period and thread, about 40,000/s) is the same at
//    every N and only the number of threads grows. The worst case for switch events.
//  - busy: each computes without pause (spinning vCPUs); switches come from CFS time slices.
// Prints the scheduler thread's CPU time as % of one CPU, median over the repetitions, per N
// and source; its cost per tick and the ticks it ran per second (a starved scheduler thread
// ticks less, and then costs less per second); the sched events read and the threads re-read
// from /proc per second (switch); and "cpu seen": the vCPU threads' CPU time as the scheduler
// counted it over what the threads measured themselves (1.000 = exact), proc/switch. Not a test: the numbers are the host's.
// Run as root (switch needs system-wide perf events; proc works unprivileged).
//
//   sched-observe-cost [SECONDS] [REPS] [N,...]      (defaults 2 3 8,64,256)

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/parse.h"
#include "sched/scheduler.h"
#include "spindle_abi.h"

using namespace spindle::sched;
using spindle::Status;

namespace {

constexpr uint64_t kWorkNs = 50'000;
constexpr unsigned kVcpusPerVm = 64;

void busyFor(uint64_t ns)
{
	const uint64_t until = spindle::monotonicNs() + ns;
	while (spindle::monotonicNs() < until) {
	}
}

struct RunResult {
	bool ok = false;
	double schedCpuPercent = 0;
	std::string source;
	uint64_t switchEvents = 0;
	double usPerTick = 0;
	double ticksPerSecond = 0;
	uint64_t fixes = 0; // threads re-read after switches that did not add up
	double cpuSeen = 0; // the vCPU threads' CPU time as observed / as the threads measured it
};

RunResult runOnce(unsigned vcpus, bool halting, SchedulerOptions::ThreadStateSource source, bool quiet, double seconds)
{
	SchedulerOptions options;
	options.policy = PolicyKind::Cfs;
	options.detectPle = options.detectPattern = options.detectPv = options.detectHints = false;
	options.detectSample = options.sampleWherePauseNeverExits = false;
	options.threadStates = source;
	// fast: the 1 ms tick throughout, as while VMs spin: neither the quiet tick nor the
	// back-off (which would stretch a tick that finds nothing to 4 ms here).
	if (!quiet)
		options.quietTickNs = options.tickBackoffNs = options.tickNs;
	auto created = Scheduler::create(options, { 0, 1 });
	if (!created) {
		std::fprintf(stderr, "scheduler: %s\n", created.error().message().c_str());
		return {};
	}
	Scheduler &scheduler = **created;
	std::vector<int> vms;
	for (unsigned at = 0; at < vcpus; at += kVcpusPerVm)
		vms.push_back(*scheduler.addVm("vm" + std::to_string(vms.size()), std::min(kVcpusPerVm, vcpus - at), nullptr));
	std::atomic<pid_t> schedulerTid{ 0 };
	scheduler.setThreadStartHook([&] { schedulerTid = static_cast<pid_t>(syscall(SYS_gettid)); });

	// All N together ask for one CPU: each works kWorkNs of every N * kWorkNs.
	const uint64_t sleepNs = static_cast<uint64_t>(vcpus - 1) * kWorkNs;
	std::atomic<bool> stop{ false };
	std::atomic<unsigned> ready{ 0 };
	std::atomic<uint64_t> workersCpuNs{ 0 };
	std::vector<std::thread> threads;
	for (unsigned k = 0; k < vcpus; ++k)
		threads.emplace_back([&, k] {
			const int vm = vms[k / kVcpusPerVm];
			const unsigned vcpu = k % kVcpusPerVm;
			Status s = scheduler.attachVcpuThread(vm, vcpu, static_cast<pid_t>(syscall(SYS_gettid)));
			if (!s)
				std::fprintf(stderr, "attach: %s\n", s.error().message().c_str());
			const uint64_t cpuAtAttach = spindle::clockNs(CLOCK_THREAD_CPUTIME_ID);
			ready++;
			while (!stop.load(std::memory_order_relaxed)) {
				busyFor(kWorkNs);
				timespec ts{ 0, static_cast<long>(sleepNs) };
				if (halting)
					nanosleep(&ts, nullptr);
			}
			// Measured before the detach, which ends the observation.
			workersCpuNs += spindle::clockNs(CLOCK_THREAD_CPUTIME_ID) - cpuAtAttach;
			scheduler.detachVcpuThread(vm, vcpu);
		});
	while (ready.load() < vcpus)
		std::this_thread::yield();
	RunResult result;
	if (Status s = scheduler.start(); !s) {
		std::fprintf(stderr, "start: %s\n", s.error().message().c_str());
		stop = true;
	} else {
		while (schedulerTid.load() == 0)
			std::this_thread::yield();
		// The scheduler thread's CPU time, from its schedstat (another thread's clock).
		const std::string stat = "/proc/self/task/" + std::to_string(schedulerTid.load()) + "/schedstat";
		auto readCpu = [&] {
			FILE *f = std::fopen(stat.c_str(), "r");
			unsigned long long ns = 0;
			if (f) {
				if (std::fscanf(f, "%llu", &ns) != 1)
					ns = 0;
				std::fclose(f);
			}
			return static_cast<uint64_t>(ns);
		};
		std::this_thread::sleep_for(std::chrono::milliseconds(200)); // past the start-up (and into quiet ticks)
		const uint64_t ticks0 = scheduler.metrics().host.ticks;
		const uint64_t cpu0 = readCpu(), wall0 = spindle::monotonicNs();
		std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
		const uint64_t cpu1 = readCpu(), wall1 = spindle::monotonicNs();
		const SchedulerMetrics m = scheduler.metrics();
		const double ticks = static_cast<double>(m.host.ticks - ticks0), cpuNs = static_cast<double>(cpu1 - cpu0);
		const double wallNs = static_cast<double>(wall1 - wall0);
		result = { true, 100.0 * cpuNs / wallNs, m.host.threadStates, m.host.switchEvents,
			   ticks > 0 ? cpuNs / ticks / 1000.0 : 0, ticks * 1e9 / wallNs, m.host.threadStateFixes };
		stop = true;
	}
	for (std::thread &t : threads)
		t.join();
	const double seen = static_cast<double>(totalOverVms(scheduler.metrics().core).cpuNs);
	result.cpuSeen = workersCpuNs.load() ? seen / static_cast<double>(workersCpuNs.load()) : 0;
	scheduler.stop();
	return result;
}

double medianOf(std::vector<double> values)
{
	std::sort(values.begin(), values.end());
	return values[values.size() / 2];
}

} // namespace

int main(int argc, char **argv)
{
	double seconds = 2;
	unsigned reps = 3;
	std::vector<unsigned> counts = { 8, 64, 256 };
	if (argc > 1)
		seconds = std::atof(argv[1]);
	if (argc > 2)
		reps = static_cast<unsigned>(std::atoi(argv[2]));
	if (argc > 3) {
		counts.clear();
		for (const std::string &item : spindle::split(argv[3], ','))
			counts.push_back(static_cast<unsigned>(std::atoi(item.c_str())));
	}
	// fast: the 1 ms tick throughout (--quiet-tick 1ms --tick-backoff 1ms), what the scheduler
	// costs while VMs spin; quiet: the default, where a run with no spin wait ticks at the quiet
	// tick (10 ms).
	struct Config {
		const char *name;
		SchedulerOptions::ThreadStateSource source;
		bool quiet;
	};
	const Config configs[] = { { "proc", SchedulerOptions::ThreadStateSource::Proc, false },
				   { "switch", SchedulerOptions::ThreadStateSource::Switch, false },
				   { "switch+quiet", SchedulerOptions::ThreadStateSource::Switch, true } };
	// A fourth argument picks configurations by name, for repeated runs of one of them.
	std::vector<Config> chosen(std::begin(configs), std::end(configs));
	if (argc > 4) {
		chosen.clear();
		for (const std::string &name : spindle::split(argv[4], ',')) {
			auto c = std::find_if(std::begin(configs), std::end(configs), [&](const Config &k) { return name == k.name; });
			if (c == std::end(configs)) {
				chosen.clear(); // an unknown name is a usage error
				break;
			}
			chosen.push_back(*c);
		}
	}
	if (seconds <= 0 || seconds > 600 || reps == 0 || reps > 100 || counts.empty() || chosen.empty() ||
	    std::any_of(counts.begin(), counts.end(), [](unsigned n) { return n == 0 || n > 64 * kVcpusPerVm; })) {
		std::fprintf(stderr, "usage: sched-observe-cost [SECONDS (0-600]] [REPS (1-100)] [N,... (1-4096)] "
			     "[CONFIG,... of proc,switch,switch+quiet]\n");
		return 2;
	}
	std::printf("scheduler thread CPU, %% of one CPU (median of %u runs of %.1f s; CPUs 0-1; 1 ms tick, "
		    "10 ms quiet tick)\n", reps, seconds);
	for (bool halting : { true, false }) {
		std::printf("\n%s vCPU threads: %% of a CPU, us per tick, ticks per second\n%6s", halting ? "halting" : "busy",
			    "vcpus");
		for (const Config &c : chosen)
			std::printf("  %26s", c.name);
		std::printf("  %14s  %8s  %11s\n", "sched events/s", "fixes/s", "cpu seen");
		for (unsigned n : counts) {
			std::printf("%6u", n);
			double eventsPerSecond = 0, fixesPerSecond = 0, cpuSeen = 0;
			for (const Config &c : chosen) {
				std::vector<double> runs, ticks, costs, seen;
				for (unsigned r = 0; r < reps; ++r) {
					RunResult res = runOnce(n, halting, c.source, c.quiet, seconds);
					if (!res.ok)
						break;
					runs.push_back(res.schedCpuPercent);
					costs.push_back(res.usPerTick);
					ticks.push_back(res.ticksPerSecond);
					seen.push_back(res.cpuSeen);
					if (c.quiet) { // the default configuration
						eventsPerSecond = static_cast<double>(res.switchEvents) / (seconds + 0.2);
						fixesPerSecond = static_cast<double>(res.fixes) / (seconds + 0.2);
					}
				}
				if (runs.size() != reps) {
					if (c.source == SchedulerOptions::ThreadStateSource::Proc)
						return 1; // /proc always works: something else is wrong
					std::printf("  %26s", "n/a");
					continue;
				}
				if (c.quiet)
					cpuSeen = medianOf(seen);
				std::printf("  %7.2f%% %8.1fus %6.0f/s", medianOf(runs), medianOf(costs), medianOf(ticks));
			}
			std::printf("  %14.0f  %8.1f  %11.3f\n", eventsPerSecond, fixesPerSecond, cpuSeen);
			std::fflush(stdout);
		}
	}
	return 0;
}

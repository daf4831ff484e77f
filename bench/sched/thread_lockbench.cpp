// The scheduler's policies against lock-holder and lock-waiter preemption on a real kernel, with
// threads standing in for vCPUs (no KVM needed).
//
// Per run: two "VMs" of two threads each hammer a pvticket lock (the guests' own lock code from
// guest-kernels/locks, publishing hints and long-spin notifications the way the enlightened
// guests do: cs 500 ns, think 2 us), and a co-runner "VM" of two threads just computes; all six
// on CPUs 0-1 (3x overcommit per CPU, 2x per lock VM). CFS time slices preempt holders and next
// waiters, exactly the waste the policies exist for. There is no PAUSE exiting here, so the
// detectors are the PV notifications and the hints.
//
// Shapes (--shape, default all of them, each a case a policy can win or lose):
//  - saturated: as above; every VM keeps both its vCPUs busy, the case gang is built for.
//  - sleepy: the lock VMs' threads work 1 ms, then block 1 ms (a guest halting between bursts
//    of I/O): VMs often have fewer ready vCPUs than the pool, gang's cost (holes, and woken
//    vCPUs waiting for their VM's turn).
//  - small-corunner: the co-runner VM has one vCPU, so its gang turn leaves a CPU to the others'
//    SCHED_IDLE leftovers and a lock VM time-shares one CPU with itself there.
//
// Prints, per shape and policy, the median lock throughput per VM over the repetitions, its ratio to
// cfs in the same run, and the co-runner's CPU share (its CPU time / its weight's part of the
// VMs' total, by vCPU count, 1.00 = its share; the sleepy VMs leave CPU the co-runner may use,
// so there it is above 1 by design) and its CPU time against cfs's, from the scheduler's own
// metrics, and the scheduler's own CPU time (% of one CPU); then, with more than one shape, each policy's ratios side by side with their geometric
// mean and the worst. Not a test: the numbers are the host's. Run as root (boosts need
// CAP_SYS_NICE).
//
//   sched-thread-lockbench [SECONDS] [REPS] [POLICY,...] [--shape all|NAME] [--sched-flag VALUE ...]

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/parse.h"
#include "guest-kernels/locks/ticket.h"
#include "common/clock.h"
#include "sched/scheduler.h"
#include "spindle_abi.h"

using namespace spindle::sched;
using spindle::Status;

namespace {

uint64_t nowNs()
{
	return spindle::monotonicNs();
}

void busyFor(uint64_t ns)
{
	uint64_t end = nowNs() + ns;
	while (nowNs() < end)
		__builtin_ia32_pause();
}

// The locks' platform: each thread knows its VM's hint page and the scheduler to notify.
struct ThreadVm {
	Scheduler *scheduler = nullptr;
	int vm = -1;
	spindle_hint_slot *hints = nullptr;
};
thread_local ThreadVm tVm;

struct ThreadPlatform {
	static void pause(uint32_t) { __builtin_ia32_pause(); }
	static uint32_t spinThreshold() { return 2048; } // the guests' default (CPUID 0x40000001)
	static spindle_hint_slot *hintSlot(uint32_t cpu) { return tVm.hints ? &tVm.hints[cpu] : nullptr; }
	static void notifyLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t)
	{
		tVm.scheduler->notifyLongSpin(tVm.vm, cpu, waitsOn, lockId);
	}
};

using Lock = spindle::locks::PvTicketLock<ThreadPlatform>;

struct Shape {
	const char *name;
	uint32_t corunnerVcpus;
	uint64_t burstNs; // lock threads: work this long, then block sleepNs (0: never block)
	uint64_t sleepNs;
};

constexpr Shape kShapes[] = {
	{ "saturated", 2, 0, 0 },
	{ "sleepy", 2, 1'000'000, 1'000'000 },
	{ "small-corunner", 1, 0, 0 },
};

const Shape *findShape(const std::string &name)
{
	for (const Shape &shape : kShapes)
		if (name == shape.name)
			return &shape;
	return nullptr;
}

struct RunResult {
	double lockOpsPerVm = 0;
	double corunnerShare = 0;
	double corunnerCpu = 0; // CPU-seconds per second
	uint64_t boosts = 0;
	double schedulerCpuPercent = 0; // the scheduler's own CPU time, % of one CPU
};

uint64_t field(const std::string &json, const std::string &name, size_t from = 0)
{
	size_t at = json.find("\"" + name + "\":", from);
	return at == std::string::npos ? 0 : std::stoull(json.substr(at + name.size() + 3));
}

void sleepNs(uint64_t ns)
{
	timespec ts{ static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000) };
	nanosleep(&ts, nullptr);
}

RunResult runOnce(PolicyKind policy, double seconds, SchedulerOptions options, const Shape &shape)
{
	options.policy = policy;
	options.detectPle = false;
	auto created = Scheduler::create(options, { 0, 1 });
	if (!created) {
		std::fprintf(stderr, "scheduler: %s\n", created.error().message().c_str());
		std::exit(1);
	}
	Scheduler &scheduler = **created;
	std::vector<spindle_hint_slot> hints(4);
	for (spindle_hint_slot &h : hints)
		h.waiting_on = SPINDLE_VCPU_NONE;
	Lock locks[2] = { Lock(1), Lock(2) };
	std::atomic<uint64_t> ops[3] = {};
	std::atomic<uint64_t> workersCpuNs{ 0 };
	std::atomic<bool> go{ false }, stop{ false };
	std::atomic<int> ready{ 0 };
	std::vector<std::thread> threads;
	int ids[3];
	const char *names[] = { "lock0", "lock1", "corunner" };
	const uint32_t vcpus[3] = { 2, 2, shape.corunnerVcpus };
	for (int vm = 0; vm < 3; ++vm)
		ids[vm] = *scheduler.addVm(names[vm], vcpus[vm], vm < 2 ? &hints[static_cast<size_t>(2 * vm)] : nullptr);
	for (int vm = 0; vm < 3; ++vm)
		for (uint32_t cpu = 0; cpu < vcpus[vm]; ++cpu)
			threads.emplace_back([&, vm, cpu] {
				tVm = { &scheduler, ids[vm], vm < 2 ? &hints[static_cast<size_t>(2 * vm)] : nullptr };
				Status s = scheduler.attachVcpuThread(ids[vm], cpu, static_cast<pid_t>(syscall(SYS_gettid)));
				if (!s)
					std::fprintf(stderr, "attach: %s\n", s.error().message().c_str());
				ready++;
				while (!go.load())
					std::this_thread::yield();
				const uint64_t cpuAtGo = spindle::clockNs(CLOCK_THREAD_CPUTIME_ID);
				uint64_t done = 0;
				uint64_t burstEnd = nowNs() + shape.burstNs;
				while (!stop.load(std::memory_order_relaxed)) {
					if (vm < 2 && shape.burstNs != 0 && nowNs() >= burstEnd) {
						sleepNs(shape.sleepNs); // never inside the critical section
						burstEnd = nowNs() + shape.burstNs;
					}
					if (vm < 2) {
						locks[vm].acquire(cpu);
						busyFor(500);
						locks[vm].release(cpu);
						busyFor(2'000);
					} else {
						busyFor(2'500);
					}
					++done;
				}
				ops[vm] += done;
				scheduler.detachVcpuThread(ids[vm], cpu);
				workersCpuNs += spindle::clockNs(CLOCK_THREAD_CPUTIME_ID) - cpuAtGo;
			});
	while (ready.load() < static_cast<int>(vcpus[0] + vcpus[1] + vcpus[2]))
		std::this_thread::yield();
	// The scheduler's CPU time: the process's, less the workers' and this thread's, from its
	// start to its stop.
	const uint64_t processCpuAtStart = spindle::clockNs(CLOCK_PROCESS_CPUTIME_ID);
	const uint64_t mainCpuAtStart = spindle::clockNs(CLOCK_THREAD_CPUTIME_ID);
	const uint64_t wallAtStart = nowNs();
	if (Status s = scheduler.start(); !s) {
		std::fprintf(stderr, "start: %s\n", s.error().message().c_str());
		std::exit(1);
	}
	go = true;
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
	std::string metrics;
	scheduler.writeMetricsJson(metrics);
	stop = true;
	for (std::thread &t : threads)
		t.join();
	scheduler.stop();
	const uint64_t wall = nowNs() - wallAtStart;
	const uint64_t others = workersCpuNs.load() + (spindle::clockNs(CLOCK_THREAD_CPUTIME_ID) - mainCpuAtStart);
	const uint64_t process = spindle::clockNs(CLOCK_PROCESS_CPUTIME_ID) - processCpuAtStart;

	RunResult r;
	r.schedulerCpuPercent = 100.0 * static_cast<double>(process - std::min(process, others)) / static_cast<double>(wall);
	r.lockOpsPerVm = static_cast<double>(ops[0] + ops[1]) / 2 / seconds;
	uint64_t cpu[3];
	for (int vm = 0; vm < 3; ++vm)
		cpu[vm] = field(metrics, "cpu_us", metrics.find("\"name\":\"" + std::string(names[vm]) + "\""));
	uint64_t total = cpu[0] + cpu[1] + cpu[2];
	const double weight = static_cast<double>(vcpus[2]) / (vcpus[0] + vcpus[1] + vcpus[2]);
	r.corunnerShare = total ? static_cast<double>(cpu[2]) / (weight * static_cast<double>(total)) : 0;
	r.corunnerCpu = static_cast<double>(cpu[2]) / 1e6 / seconds;
	r.boosts = field(metrics, "boosts_applied");
	return r;
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

std::string ratioText(double value, double base)
{
	char text[32] = "-";
	if (base > 0)
		std::snprintf(text, sizeof text, "%.2fx", value / base);
	return text;
}

// Runs every policy REPS times on one shape (interleaved, so drift hits all alike), prints the
// shape's table and returns each policy's median lock throughput against cfs's (0 without cfs).
std::vector<double> runShape(const Shape &shape, const std::vector<PolicyKind> &policies, double seconds, int reps,
			     const SchedulerOptions &options)
{
	std::vector<std::vector<RunResult>> results(policies.size());
	for (int rep = 0; rep < reps; ++rep)
		for (size_t p = 0; p < policies.size(); ++p)
			results[p].push_back(runOnce(policies[p], seconds, options, shape));

	double cfsOps = 0, cfsCorunnerCpu = 0;
	for (size_t p = 0; p < policies.size(); ++p)
		if (policies[p] == PolicyKind::Cfs) {
			std::vector<double> v, c;
			for (const RunResult &r : results[p]) {
				v.push_back(r.lockOpsPerVm);
				c.push_back(r.corunnerCpu);
			}
			cfsOps = median(v);
			cfsCorunnerCpu = median(c);
		}
	std::printf("%d x %.1f s, shape %s: 2 pvticket VMs of 2 threads + 1 co-runner of %u, CPUs 0-1\n", reps,
		    seconds, shape.name, shape.corunnerVcpus);
	std::printf("| policy | lock ops/s per VM (runs) | median | vs cfs | co-runner CPU share (median) |"
		    " co-runner CPU vs cfs | boosts (median) | scheduler CPU %% (median) |\n");
	std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
	std::vector<double> vsCfs;
	for (size_t p = 0; p < policies.size(); ++p) {
		std::vector<double> opsV, share, corunnerCpu, boosts, schedulerCpu;
		std::string runs;
		for (const RunResult &r : results[p]) {
			opsV.push_back(r.lockOpsPerVm);
			share.push_back(r.corunnerShare);
			corunnerCpu.push_back(r.corunnerCpu);
			boosts.push_back(static_cast<double>(r.boosts));
			schedulerCpu.push_back(r.schedulerCpuPercent);
			runs += (runs.empty() ? "" : " ") + std::to_string(static_cast<long long>(r.lockOpsPerVm));
		}
		double m = median(opsV);
		std::printf("| %s | %s | %.0f | %s | %.2f | %s | %.0f | %.1f |\n", std::string(policyName(policies[p])).c_str(),
			    runs.c_str(), m, ratioText(m, cfsOps).c_str(), median(share),
			    ratioText(median(corunnerCpu), cfsCorunnerCpu).c_str(), median(boosts), median(schedulerCpu));
		vsCfs.push_back(cfsOps > 0 ? m / cfsOps : 0);
	}
	std::printf("\n");
	std::fflush(stdout);
	return vsCfs;
}

int usage()
{
	std::printf("usage: sched-thread-lockbench [SECONDS] [REPS] [POLICY,...] [--shape all|saturated|sleepy|small-corunner]"
		    " [--sched-flag VALUE ...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
	int reps = argc > 2 ? std::atoi(argv[2]) : 3;
	std::string list = argc > 3 ? argv[3] : "cfs,yield,coboost,extend,express,gang,adaptive";
	std::vector<PolicyKind> policies;
	for (const std::string &name : spindle::split(list, ',')) {
		auto kind = parsePolicyName(name);
		if (!kind || seconds <= 0 || reps <= 0)
			return usage();
		policies.push_back(*kind);
	}
	SchedulerOptions options;
	const Shape *shape = nullptr; // every shape
	if (argc > 4 && argc % 2 != 0)
		return usage();
	for (int i = 4; i + 1 < argc; i += 2) {
		if (std::string(argv[i]) == "--shape") {
			shape = std::string(argv[i + 1]) == "all" ? nullptr : findShape(argv[i + 1]);
			if (!shape && std::string(argv[i + 1]) != "all")
				return usage();
		} else if (Status s = applySchedFlag(options, argv[i], argv[i + 1]); !s) {
			std::printf("%s\n", s.error().message().c_str());
			return 2;
		}
	}
	if (std::thread::hardware_concurrency() < 2) {
		std::printf("needs two CPUs\n");
		return 0;
	}
	std::vector<const Shape *> shapes;
	if (shape)
		shapes.push_back(shape);
	else
		for (const Shape &each : kShapes)
			shapes.push_back(&each);
	std::vector<std::vector<double>> vsCfs;
	for (const Shape *each : shapes)
		vsCfs.push_back(runShape(*each, policies, seconds, reps, options));
	if (shapes.size() < 2 || vsCfs[0].empty() || vsCfs[0][0] == 0)
		return 0;
	// Across shapes: a policy that wins one shape by losing another shows here.
	std::printf("Lock throughput against cfs, medians per shape:\n| policy |");
	for (const Shape *each : shapes)
		std::printf(" %s |", each->name);
	std::printf(" geometric mean | worst |\n|---|");
	for (size_t i = 0; i < shapes.size(); ++i)
		std::printf("---:|");
	std::printf("---:|---:|\n");
	for (size_t p = 0; p < policies.size(); ++p) {
		double logSum = 0, worst = 1e9;
		std::printf("| %s |", std::string(policyName(policies[p])).c_str());
		for (size_t i = 0; i < shapes.size(); ++i) {
			std::printf(" %.2fx |", vsCfs[i][p]);
			logSum += std::log(vsCfs[i][p]);
			worst = std::min(worst, vsCfs[i][p]);
		}
		std::printf(" %.2fx | %.2fx |\n", std::exp(logSum / static_cast<double>(shapes.size())), worst);
	}
	return 0;
}

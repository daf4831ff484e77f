// How long boosts really last on this host, through the whole scheduler (event loop, expiry
// timer, the scheduler thread rising above its boosts), on real threads standing in for vCPUs.
//
// Two "VMs" of two busy threads and a busy co-runner "VM" share CPUs 0-1 under `express`; the
// main thread sends a long-spin notification naming a de-scheduled sibling every 2 ms for two
// seconds. Printed from the scheduler's own metrics: boosts applied, their mean length from the
// boost system call to the unboost system call against the 50 us budget, the longest overrun
// and the longest decision-to-system-call latency, plus each group's CPU time. Not a test: the
// numbers are the host's. Run it as root (SCHED_FIFO needs CAP_SYS_NICE).

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sched/scheduler.h"

using namespace spindle::sched;
using spindle::Status;

namespace {

struct Spinner {
	std::atomic<pid_t> tid{ 0 };
	std::atomic<bool> stop{ false };
	std::thread thread;
	Spinner()
	{
		thread = std::thread([this] {
			tid = static_cast<pid_t>(syscall(SYS_gettid));
			volatile uint64_t work = 0;
			while (!stop.load(std::memory_order_relaxed))
				work = work + 1;
		});
		while (tid.load() == 0)
			std::this_thread::yield();
	}
	~Spinner()
	{
		stop = true;
		thread.join();
	}
};

uint64_t field(const std::string &json, const std::string &name)
{
	size_t at = json.rfind("\"" + name + "\":");
	return at == std::string::npos ? 0 : std::stoull(json.substr(at + name.size() + 3));
}

} // namespace

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
	if (std::thread::hardware_concurrency() < 2) {
		std::printf("needs two CPUs\n");
		return 0;
	}
	SchedulerOptions options;
	options.policy = PolicyKind::Express;
	options.detectPle = false; // no kvm:kvm_exit here; the notifications are the only source
	if (const char *trace = std::getenv("SPINDLE_TRACE"))
		options.tracePath = trace;
	auto created = Scheduler::create(options, { 0, 1 });
	if (!created) {
		std::printf("scheduler: %s\n", created.error().message().c_str());
		return 1;
	}
	Scheduler &scheduler = **created;
	const char *names[] = { "vm0", "vm1", "corunner" };
	std::vector<std::unique_ptr<Spinner>> threads;
	for (int vm = 0; vm < 3; ++vm) {
		int id = scheduler.addVm(names[vm], 2, nullptr);
		for (unsigned i = 0; i < 2; ++i) {
			threads.push_back(std::make_unique<Spinner>());
			Status s = scheduler.attachVcpuThread(id, i, threads.back()->tid.load());
			if (!s) {
				std::printf("attach: %s\n", s.error().message().c_str());
				return 1;
			}
		}
	}
	if (Status s = scheduler.start(); !s) {
		std::printf("start: %s\n", s.error().message().c_str());
		return 1;
	}
	auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
	for (unsigned k = 0; std::chrono::steady_clock::now() < end; ++k) {
		int vm = static_cast<int>(k % 2);
		scheduler.notifyLongSpin(vm, k / 2 % 2, (k / 2 + 1) % 2, 1);
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	std::string metrics;
	scheduler.writeMetricsJson(metrics);
	scheduler.stop();
	threads.clear();

	uint64_t applied = field(metrics, "boosts_applied");
	if (applied == 0) {
		std::printf("no boost was applied (no SCHED_FIFO permission?)\n");
		return 0;
	}
	std::printf("express, 50 us budget, %.1f s: %llu boosts applied, mean %.0f us from boost to unboost "
		    "system call, longest overrun %llu us, longest decision-to-system-call %llu us\n",
		    seconds, static_cast<unsigned long long>(applied),
		    static_cast<double>(field(metrics, "boost_applied_us")) / static_cast<double>(applied),
		    static_cast<unsigned long long>(field(metrics, "boost_overrun_max_us")),
		    static_cast<unsigned long long>(field(metrics, "actuation_latency_max_us")));
	for (const char *name : names) {
		size_t at = metrics.find("\"name\":\"" + std::string(name) + "\"");
		size_t totals = metrics.find("\"cpu_us\":", at);
		std::printf("  %-9s CPU time %llu ms\n", name,
			    static_cast<unsigned long long>(std::stoull(metrics.substr(totals + 9)) / 1000));
	}
	return 0;
}

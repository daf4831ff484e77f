// How long boosts really last on this host, through the whole scheduler (event loop, expiry
// timer, the scheduler thread rising above its boosts), on real threads standing in for vCPUs.
//
// Two "VMs" of two busy threads and a busy co-runner "VM" share CPUs 0-1.
//   express (default): the main thread sends a long-spin notification naming a de-scheduled
//     sibling every 2 ms; the boosts have a 50 us budget.
//   extend: every thread of the two VMs publishes in its hint slot that it holds a lock for
//     200 us of every millisecond; extensions (500 us budget) should end at the release, and
//     the scheduler reports how late it noticed (extension_end_late_*).
// Printed from the scheduler's own metrics: boosts applied, their mean length from the boost
// system call to the unboost system call, the longest overrun and the longest
// decision-to-system-call latency, plus each group's CPU time. Not a test: the numbers are the
// host's. Run it as root (SCHED_FIFO needs CAP_SYS_NICE).
//
//   sched-boost-overrun [SECONDS] [express|extend] [fifo|deadline]

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

// A busy thread; with a hint slot it "holds a lock" for 200 us of every millisecond, publishing
// it the way an enlightened guest does (locks_held, then seq).
struct Spinner {
	std::atomic<pid_t> tid{ 0 };
	std::atomic<bool> stop{ false };
	std::thread thread;
	explicit Spinner(volatile spindle_hint_slot *slot)
	{
		thread = std::thread([this, slot] {
			tid = static_cast<pid_t>(syscall(SYS_gettid));
			volatile uint64_t work = 0;
			uint64_t phase = nowNs();
			while (!stop.load(std::memory_order_relaxed)) {
				work = work + 1;
				if (slot == nullptr || (work & 1023) != 0)
					continue;
				uint64_t t = nowNs();
				bool hold = (t - phase) % 1'000'000 < 200'000;
				if (hold != (slot->locks_held != 0)) {
					slot->locks_held = hold ? 1 : 0;
					slot->seq = slot->seq + 1;
				}
			}
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

// Sum of a counter over the VMs' totals (the per-vCPU copies are skipped).
uint64_t sumOf(const std::string &json, const std::string &name)
{
	uint64_t sum = 0;
	for (size_t at = json.find("\"totals\":{"); at != std::string::npos; at = json.find("\"totals\":{", at + 1)) {
		size_t key = json.find("\"" + name + "\":", at);
		sum += std::stoull(json.substr(key + name.size() + 3));
	}
	return sum;
}

} // namespace

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
	const bool extend = argc > 2 && std::string(argv[2]) == "extend";
	const bool deadline = argc > 3 && std::string(argv[3]) == "deadline";
	if ((argc > 2 && !extend && std::string(argv[2]) != "express") ||
	    (argc > 3 && !deadline && std::string(argv[3]) != "fifo")) {
		std::printf("usage: sched-boost-overrun [SECONDS] [express|extend] [fifo|deadline]\n");
		return 2;
	}
	if (std::thread::hardware_concurrency() < 2) {
		std::printf("needs two CPUs\n");
		return 0;
	}
	SchedulerOptions options;
	options.policy = extend ? PolicyKind::Extend : PolicyKind::Express;
	options.detectPle = false; // no kvm:kvm_exit here; the notifications are the only source
	options.boostClass = deadline ? BoostClass::Deadline : BoostClass::Fifo;
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
	std::vector<spindle_hint_slot> hints(4);
	for (spindle_hint_slot &h : hints)
		h.waiting_on = SPINDLE_VCPU_NONE;
	for (int vm = 0; vm < 3; ++vm) {
		volatile spindle_hint_slot *vmHints = extend && vm < 2 ? &hints[static_cast<size_t>(2 * vm)] : nullptr;
		int id = *scheduler.addVm(names[vm], 2, vmHints);
		for (unsigned i = 0; i < 2; ++i) {
			threads.push_back(std::make_unique<Spinner>(vmHints ? vmHints + i : nullptr));
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
		if (!extend)
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
	std::printf("%s, %.1f s: %llu boosts applied, mean %.0f us from boost to unboost "
		    "system call, longest overrun %llu us, longest decision-to-system-call %llu us\n",
		    extend ? "extend, 500 us budget" : "express, 50 us budget", seconds,
		    static_cast<unsigned long long>(applied),
		    static_cast<double>(field(metrics, "boost_applied_us")) / static_cast<double>(applied),
		    static_cast<unsigned long long>(field(metrics, "boost_overrun_max_us")),
		    static_cast<unsigned long long>(field(metrics, "actuation_latency_max_us")));
	if (extend)
		std::printf("  extensions granted %llu, ended early at the release %llu; release noticed at most "
			    "%llu us (mean %llu us) after the previous read of the slot\n",
			    static_cast<unsigned long long>(sumOf(metrics, "extensions_granted")),
			    static_cast<unsigned long long>(sumOf(metrics, "extensions_ended_early")),
			    static_cast<unsigned long long>(field(metrics, "extension_end_late_max_us")),
			    static_cast<unsigned long long>(field(metrics, "extension_end_late_mean_us")));
	for (const char *name : names) {
		size_t at = metrics.find("\"name\":\"" + std::string(name) + "\"");
		size_t totals = metrics.find("\"cpu_us\":", at);
		std::printf("  %-9s CPU time %llu ms\n", name,
			    static_cast<unsigned long long>(std::stoull(metrics.substr(totals + 9)) / 1000));
	}
	return 0;
}

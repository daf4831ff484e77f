// How close a Spindle guest's integer work comes to the same work on a host thread.
//
//   build/bench/guest/guest-cpu-ratio [--spindle PATH] [--mode ring0|ring3|auto] [--runs N]
//                                     [--duration SECONDS] [--cpu N] [--detect LIST]
//                                     [--versus-detect LIST]
//
// With --versus-detect, the same guest run under --detect LIST is compared with a run under
// --versus-detect (e.g. --detect sample --versus-detect none: what sampling costs the guest).
//
// Each run times lockbench's work unit (guest-kernels/lockbench/work_unit.h) on a host thread
// pinned to --cpu for --duration, then boots `spindle run lockbench -c 1 --pcpus CPU
// --guest-mode MODE -- mode=cpu` for as long and reads its ops/s from --results; host and
// guest alternate, so drift hits both. Prints each run and the medians, and the ratio of the
// medians (guest / host): 1.0 is native speed. On software-virtualized KVM (PVM), ring 3 is
// native and ring 0 is emulated; the guest's own loop also reads the TSC twice per unit and
// records a latency histogram, which the host loop does not, so a little under 1.0 is native.

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "guest-kernels/lockbench/work_unit.h"
#include "tests/support/run_command.h"

namespace {

struct Options {
	std::string spindle = "build/vmm/spindle";
	std::string mode = "ring3";
	std::string detect;       // --detect for the guest run ("": Spindle's default)
	std::string versusDetect; // set: compare the guest under --detect against this, not the host
	int runs = 5;
	double duration = 1.0;
	int cpu = 0;
};

[[noreturn]] void usage(const char *why)
{
	std::fprintf(stderr, "guest-cpu-ratio: %s\nusage: guest-cpu-ratio [--spindle PATH] [--mode ring0|ring3|auto] "
			     "[--runs N] [--duration SECONDS] [--cpu N] [--detect LIST] [--versus-detect LIST]\n", why);
	std::exit(2);
}

Options parse(int argc, char **argv)
{
	Options o;
	if (const char *bin = std::getenv("SPINDLE_BIN"))
		o.spindle = bin;
	for (int i = 1; i < argc; ++i) {
		const std::string arg = argv[i];
		if (arg == "-h" || arg == "--help")
			usage("compares a guest's integer work with a host thread's");
		if (i + 1 >= argc)
			usage((arg + " needs a value").c_str());
		const std::string value = argv[++i];
		if (arg == "--spindle")
			o.spindle = value;
		else if (arg == "--mode" && (value == "ring0" || value == "ring3" || value == "auto"))
			o.mode = value;
		else if (arg == "--runs" && std::atoi(value.c_str()) >= 1 && std::atoi(value.c_str()) <= 100)
			o.runs = std::atoi(value.c_str());
		else if (arg == "--duration" && std::atof(value.c_str()) >= 0.05 && std::atof(value.c_str()) <= 60)
			o.duration = std::atof(value.c_str());
		else if (arg == "--cpu" && std::atoi(value.c_str()) >= 0 && std::atoi(value.c_str()) < CPU_SETSIZE)
			o.cpu = std::atoi(value.c_str());
		else if (arg == "--detect" && !value.empty())
			o.detect = value;
		else if (arg == "--versus-detect" && !value.empty())
			o.versusDetect = value;
		else
			usage(("bad option or value: " + arg + " " + value).c_str());
	}
	return o;
}

double hostUnitsPerSecond(const Options &o)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(o.cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	const uint64_t start = spindle::monotonicNs();
	const uint64_t end = start + static_cast<uint64_t>(o.duration * 1e9);
	uint64_t x = 1, units = 0, now = start;
	while ((now = spindle::monotonicNs()) < end) {
		for (int i = 0; i < 64; ++i)
			x = spindle::lockbench::workUnit(x);
		units += 64;
	}
	asm volatile("" : : "r"(x));
	return static_cast<double>(units) / (static_cast<double>(now - start) / 1e9);
}

double guestUnitsPerSecond(const Options &o, const std::string &detect)
{
	const std::string results = "/tmp/guest-cpu-ratio-" + std::to_string(getpid()) + ".json";
	char duration[32];
	std::snprintf(duration, sizeof(duration), "duration=%dms", static_cast<int>(o.duration * 1000));
	std::vector<std::string> args = {o.spindle, "run", "lockbench", "-c", "1", "--pcpus", std::to_string(o.cpu),
					 "--guest-mode", o.mode, "--serial", "off", "--log-level", "error", "--results", results};
	if (!detect.empty())
		args.insert(args.end(), {"--detect", detect});
	args.insert(args.end(), {"--", "mode=cpu", duration});
	auto run = spindle::test::runCommand(args, o.duration * 20 + 60);
	std::ifstream file(results);
	std::stringstream text;
	text << file.rdbuf();
	unlink(results.c_str());
	const std::string json = text.str();
	const std::string key = "\"ops_per_sec\":";
	const size_t at = json.find(key);
	if (run.status != 0 || at == std::string::npos) {
		std::fprintf(stderr, "guest-cpu-ratio: spindle run failed (status %d): %s\n", run.status, run.err.c_str());
		std::exit(1);
	}
	return std::atof(json.c_str() + at + key.size());
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char **argv)
{
	const Options o = parse(argc, argv);
	std::printf("guest-cpu-ratio: lockbench work units per second, host thread vs guest (%s), CPU %d, %d runs of %.2f s\n",
		    o.mode.c_str(), o.cpu, o.runs, o.duration);
	std::vector<double> host, guest;
	const bool versus = !o.versusDetect.empty();
	if (versus)
		std::printf("  comparing the guest under --detect %s against --detect %s (the 'host' column)\n",
			    o.detect.empty() ? "(default)" : o.detect.c_str(), o.versusDetect.c_str());
	for (int i = 0; i < o.runs; ++i) {
		host.push_back(versus ? guestUnitsPerSecond(o, o.versusDetect) : hostUnitsPerSecond(o));
		guest.push_back(guestUnitsPerSecond(o, o.detect));
		std::printf("  run %d: host %.0f/s, guest %.0f/s, ratio %.3f\n", i + 1, host.back(), guest.back(),
			    guest.back() / host.back());
		std::fflush(stdout);
	}
	std::printf("median: host %.0f/s, guest %.0f/s\nratio (guest/host, medians): %.3f\n", median(host), median(guest),
		    median(guest) / median(host));
	return 0;
}

#include "bench/harness/options.h"

#include <map>
#include <optional>

#include "common/parse.h"

namespace spindle::bench {

namespace {

// Defaults: the full matrix, and the --quick one. The full matrix takes about 10-15 minutes
// inside the emulated KVM host (each run is 1 s of guest time plus VM setup); --quick about one.
struct Defaults {
	const char *policies, *overcommit, *locks, *cs, *repeats, *fairness;
};
constexpr Defaults kFull{ "cfs-nople,cfs,yield,coboost,gang,adaptive", "1,2,4", "ticket,mcs", "500ns", "3", "on" };
constexpr Defaults kQuick{ "cfs-nople,cfs,coboost,adaptive", "1,2", "ticket", "500ns", "3", "off" };
constexpr const char *kThink = "2us";
constexpr const char *kDuration = "1s";
constexpr const char *kPcpus = "0-1";
constexpr const char *kRunTimeout = "120s";
constexpr uint64_t kMaxDurationNs = 600'000'000'000; // the guest's own limit
constexpr unsigned kMaxVcpus = 256;                  // SPINDLE_MAX_VCPUS
// As spindle run's --timeout; it also keeps the hang watchdog's limit (this plus a grace, as
// std::chrono::nanoseconds) far from overflowing.
constexpr uint64_t kMaxRunTimeoutNs = 7ull * 24 * 3600 * 1'000'000'000;

const char *const kValueFlags[] = { "policies", "overcommit", "locks", "cs", "think", "duration", "repeats",
				    "fairness", "pcpus", "vcpus", "out", "run-timeout" };

Result<uint64_t> durationFlag(const std::string &name, const std::string &text)
{
	if (text == "0")
		return uint64_t{ 0 };
	auto value = parseDurationNs(text);
	if (!value)
		return Error::invalid("--" + name + ": " + value.error().message());
	return value;
}

} // namespace

Result<BenchOptions> parseBenchOptions(const std::vector<std::string> &args, const std::vector<std::string> &knownPolicies)
{
	BenchOptions options;
	std::map<std::string, std::string> given;
	for (size_t i = 0; i < args.size(); ++i) {
		std::string arg = args[i];
		if (arg == "-h" || arg == "--help") {
			options.help = true;
			continue;
		}
		if (arg == "--quick") {
			options.quick = true;
			continue;
		}
		if (!arg.starts_with("--"))
			return Error::invalid("unexpected argument '" + arg + "' (spindle bench takes only flags; see --help)");
		std::string name = arg.substr(2), value;
		bool hasValue = false;
		if (size_t eq = name.find('='); eq != std::string::npos) {
			value = name.substr(eq + 1);
			name = name.substr(0, eq);
			hasValue = true;
		}
		bool known = false;
		for (const char *flag : kValueFlags)
			known = known || name == flag;
		if (!known)
			return Error::invalid("unknown flag '--" + name + "' (see spindle bench --help)");
		if (!hasValue) {
			if (i + 1 >= args.size())
				return Error::invalid("--" + name + " needs a value");
			value = args[++i];
		}
		if (given.count(name))
			return Error::invalid("--" + name + " given twice");
		given[name] = value;
	}

	// --quick changes the defaults only: flags given explicitly win, in any order.
	const Defaults &d = options.quick ? kQuick : kFull;
	auto get = [&](const char *name, const char *fallback) {
		auto it = given.find(name);
		return it != given.end() ? it->second : std::string(fallback);
	};
	MatrixSpec &m = options.matrix;

	auto policies = parsePolicyList(get("policies", d.policies), knownPolicies);
	if (!policies)
		return policies.error().wrap("--policies");
	m.policies = *policies;
	auto overcommit = parseOvercommitList(get("overcommit", d.overcommit));
	if (!overcommit)
		return overcommit.error().wrap("--overcommit");
	m.overcommit = *overcommit;
	auto locks = parseLockList(get("locks", d.locks));
	if (!locks)
		return locks.error().wrap("--locks");
	m.locks = *locks;
	auto cs = parseCsList(get("cs", d.cs));
	if (!cs)
		return cs.error().wrap("--cs");
	m.csNs = *cs;
	auto think = durationFlag("think", get("think", kThink));
	if (!think)
		return think.error();
	m.thinkNs = *think;
	auto duration = durationFlag("duration", get("duration", kDuration));
	if (!duration)
		return duration.error();
	if (*duration < 1'000'000 || *duration > kMaxDurationNs)
		return Error::invalid("--duration must be between 1ms and 600s (the guest's limits)");
	m.durationNs = *duration;
	auto repeats = parseUnsigned(get("repeats", d.repeats), 1, 1000);
	if (!repeats)
		return repeats.error().wrap("--repeats");
	m.repeats = static_cast<unsigned>(*repeats);
	const std::string fairness = get("fairness", d.fairness);
	if (fairness != "on" && fairness != "off")
		return Error::invalid("--fairness must be on or off, not '" + fairness + "'");
	m.fairness = fairness == "on";
	if (auto status = validateMatrix(m); !status)
		return status.error();

	auto pcpus = parseCpuList(get("pcpus", kPcpus));
	if (!pcpus)
		return pcpus.error().wrap("--pcpus");
	options.pcpus = *pcpus;
	options.vcpusPerVm = static_cast<unsigned>(options.pcpus.size());
	if (given.count("vcpus")) {
		auto vcpus = parseUnsigned(given["vcpus"], 1, kMaxVcpus);
		if (!vcpus)
			return vcpus.error().wrap("--vcpus");
		options.vcpusPerVm = static_cast<unsigned>(*vcpus);
	} else if (options.vcpusPerVm > kMaxVcpus) {
		// The default would give every VM more vCPUs than a VM may have: every run would fail.
		return Error::invalid("--pcpus: a pool of " + std::to_string(options.vcpusPerVm) +
				      " CPUs is more than the " + std::to_string(kMaxVcpus) +
				      " vCPUs a VM may have; give --vcpus");
	}
	options.outDir = get("out", options.outDir.c_str());
	if (options.outDir.empty())
		return Error::invalid("--out needs a directory");
	auto timeout = durationFlag("run-timeout", get("run-timeout", kRunTimeout));
	if (!timeout)
		return timeout.error();
	if (*timeout < m.durationNs)
		return Error::invalid("--run-timeout must be at least --duration (a run could never finish)");
	if (*timeout > kMaxRunTimeoutNs)
		return Error::invalid("--run-timeout must be at most 7 days");
	options.runTimeoutNs = *timeout;
	return options;
}

std::string benchUsage()
{
	std::string text = R"(Usage: spindle bench [OPTIONS]

Runs the overcommit matrix: for each lock type and critical-section length, k identical
lock-bound lockbench VMs (k = each overcommit factor) share the pool under each policy, each
cell repeated; reports medians. Every matrix also runs the baselines it divides by: one VM alone
under cfs per lock, critical section and PLE setting (on, and off when a -nople policy is listed),
and with fairness on, one cpu-bound VM alone and, per cell, the same VMs plus a cpu-bound co-runner.

  efficiency = a VM's throughput / (alone throughput / k)          1.0 is the physical limit
  fairness   = co-runner's rate / (its rate alone / VMs in pool)   1.0 is its entitled share

Matrix (comma-separated lists; [quick] is the --quick default where it differs):
  --policies LIST     policies; NAME-nople runs NAME with KVM's PAUSE-loop exiting off
                      (default )";
	text += std::string(kFull.policies) + ")\n                      [quick: " + kQuick.policies + "]";
	text += std::string(R"(
  --overcommit LIST   overcommit factors k (default )") + kFull.overcommit + ") [quick: " + kQuick.overcommit + "]";
	text += std::string(R"(
  --locks LIST        ticket, tas, ttas, mcs, qspin, pvticket (default )") + kFull.locks + ") [quick: " + kQuick.locks + "]";
	text += std::string(R"(
  --cs LIST           critical-section lengths, 0..10ms (default )") + kFull.cs + ")";
	text += std::string(R"(
  --think DURATION    time between lock operations (default )") + kThink + ")";
	text += std::string(R"(
  --duration DURATION guest run length of every run, 1ms..600s (default )") + kDuration + ")";
	text += std::string(R"(
  --repeats N         repetitions of every run; medians are reported (default )") + kFull.repeats + ")";
	text += std::string(R"(
  --fairness on|off   add the cpu-bound co-runner runs (default )") + kFull.fairness + ") [quick: " + kQuick.fairness + "]";
	text += std::string(R"(
  --quick             the small matrix above (about a minute inside the emulated KVM host)

Host:
  --pcpus LIST        the pool of host CPUs (default )") + kPcpus + ")";
	text += std::string(R"(
  --vcpus N           vCPUs of every VM (default: the pool's size, so k VMs are k x overcommitted)
  --run-timeout DUR   wall-clock limit of one run, at most 7 days; a run that hits it is
                      recorded as failed (default )") + kRunTimeout + ")";
	text += std::string(R"(
  --out DIR           output directory, created if missing (default bench-results)
  -h, --help          this help

Writes DIR/runs.csv and DIR/runs.json (one row per run, raw), DIR/summary.md (tables of medians)
and DIR/summary.csv (medians for bench/plot.gp), rewritten after every run. Each records the host
(kvm, emulated or kvm-in-qemu; CPU model, kernel, CPUs), the spindle version, date and command.
A failed run is recorded with its reason and the matrix goes on (exit 0). SIGINT/SIGTERM stops
the current run, keeps every finished run and writes the files (exit 130).
bench/run-matrix runs this on a KVM host or inside the emulated one, then draws the plots.
)");
	return text;
}

} // namespace spindle::bench

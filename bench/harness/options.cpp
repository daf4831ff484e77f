#include "bench/harness/options.h"

#include <algorithm>
#include <map>
#include <optional>

#include "common/flag_table.h"
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
// Both matrices run today's scenario only, so their numbers stay comparable with earlier ones.
constexpr const char *kScenarios = "homogeneous";
constexpr const char *kThink = "2us";
constexpr const char *kDuration = "1s";
constexpr const char *kPcpus = "0-1";
constexpr const char *kRunTimeout = "120s";
constexpr uint64_t kMaxDurationNs = 600'000'000'000; // the guest's own limit
constexpr unsigned kMaxVcpus = 256;                  // SPINDLE_MAX_VCPUS
// As spindle run's --timeout; it also keeps the hang watchdog's limit (this plus a grace, as
// std::chrono::nanoseconds) far from overflowing.
constexpr uint64_t kMaxRunTimeoutNs = 7ull * 24 * 3600 * 1'000'000'000;

// The argv walk keeps every value as given; the defaults (which --quick changes) apply after.
struct BenchParse {
	BenchOptions options;
	std::map<std::string, std::string> given;
};

Flag<BenchParse> valueFlag(std::string_view name)
{
	return {name, "VALUE", "", [name](BenchParse &p, const std::string &value) -> Status {
			if (!p.given.emplace(std::string(name), value).second)
				return Error::invalid("--" + std::string(name) + " given twice");
			return {};
		}};
}

const FlagTable<BenchParse> &benchFlags()
{
	static const FlagTable<BenchParse> table([] {
		std::vector<Flag<BenchParse>> flags;
		for (const char *name : {"scenarios", "policies", "overcommit", "locks", "cs", "think", "duration", "repeats", "fairness",
					 "pcpus", "vcpus", "out", "run-timeout"})
			flags.push_back(valueFlag(name));
		flags.push_back({"quick", "", "", [](BenchParse &p, const std::string &) -> Status {
					 p.options.quick = true;
					 return {};
				 }});
		flags.push_back({"help", "", "", [](BenchParse &p, const std::string &) -> Status {
					 p.options.help = true;
					 return {};
				 }, 'h'});
		return flags;
	}());
	return table;
}

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
	BenchParse parse;
	FlagTable<BenchParse>::Hooks hooks;
	hooks.seeHelp = "spindle bench --help";
	if (auto status = benchFlags().parse(args, parse, hooks); !status)
		return status.error();
	BenchOptions &options = parse.options;
	std::map<std::string, std::string> &given = parse.given;

	// --quick changes the defaults only: flags given explicitly win, in any order.
	const Defaults &d = options.quick ? kQuick : kFull;
	auto get = [&](const char *name, const char *fallback) {
		auto it = given.find(name);
		return it != given.end() ? it->second : std::string(fallback);
	};
	MatrixSpec &m = options.matrix;

	auto scenarios = parseScenarioList(get("scenarios", kScenarios));
	if (!scenarios)
		return scenarios.error().wrap("--scenarios");
	m.scenarios = *scenarios;
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

	auto pcpus = parseCpuList(get("pcpus", kPcpus));
	if (!pcpus)
		return pcpus.error().wrap("--pcpus");
	options.pcpus = *pcpus;
	m.poolCpus = static_cast<unsigned>(options.pcpus.size());
	m.vcpusPerVm = m.poolCpus;
	if (given.count("vcpus")) {
		auto vcpus = parseUnsigned(given["vcpus"], 1, kMaxVcpus);
		if (!vcpus)
			return vcpus.error().wrap("--vcpus");
		m.vcpusPerVm = static_cast<unsigned>(*vcpus);
	} else if (m.vcpusPerVm > kMaxVcpus) {
		// The default would give every VM more vCPUs than a VM may have: every run would fail.
		return Error::invalid("--pcpus: a pool of " + std::to_string(m.vcpusPerVm) +
				      " CPUs is more than the " + std::to_string(kMaxVcpus) +
				      " vCPUs a VM may have; give --vcpus");
	}
	if (auto status = validateMatrix(m); !status)
		return status.error();
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

Runs the overcommit matrix: for each scenario (a named VM mix, below), lock type and
critical-section length, the scenario's VMs at each overcommit factor k share the pool under
each policy, each cell repeated; reports medians. Every matrix also runs the baselines it
divides by: each distinct VM of a scenario alone under cfs, once per PLE setting (on, and off
when a -nople policy is listed), and with fairness on, one cpu-bound VM alone and, per cell,
the same VMs plus a cpu-bound co-runner.

  efficiency of a VM = its throughput / (its throughput alone x its fair share)
                       a run's efficiency is the mean over its VMs; 1.0 is the physical limit
  fairness           = the co-runner's rate / (its rate alone x its fair share)
                       1.0 is its entitled share
  fair share         = the pool split equally over the vCPUs that want it, a vCPU wanting no
                       more than its busy part (a sleepy one: half); over what the VM gets alone.
                       k equal busy VMs: 1/k each; busy VMs of at most pool size: pool CPUs /
                       all vCPUs, for big and small VMs alike

Scenarios (N = --vcpus, by default the pool's CPU count; the matrix's lock and cs apply to
every lock VM):
)";
	for (const ScenarioInfo &scenario : knownScenarios()) {
		// Continuation lines go under the text they continue.
		auto indented = [](std::string_view lines, size_t column) {
			std::string out;
			for (char c : lines)
				out += c == '\n' ? "\n" + std::string(column, ' ') : std::string(1, c);
			return out;
		};
		std::string name(scenario.name);
		name.resize(std::max<size_t>(name.size() + 1, 20), ' ');
		text += "  " + name + indented(scenario.mix, 22) + "\n                      why: " +
			indented(scenario.purpose, 27) + "\n";
	}
	text += R"(
Matrix (comma-separated lists; [quick] is the --quick default where it differs):
  --scenarios LIST    scenarios above, or all (default )";
	text += std::string(kScenarios) + ")";
	text += R"(
  --policies LIST     policies; NAME-nople runs NAME with KVM's PAUSE-loop exiting off,
                      NAME-dl with SCHED_DEADLINE boosts (--boost-class deadline; both:
                      NAME-dl-nople) (default )";
	text += std::string(kFull.policies) + ")\n                      [quick: " + kQuick.policies + "]";
	text += std::string(R"(
  --overcommit LIST   overcommit factors k (default )") + kFull.overcommit + ") [quick: " + kQuick.overcommit + "]";
	text += std::string(R"(
  --locks LIST        ticket, tas, ttas, mcs, qspin, pvticket, pvhalt (default )") + kFull.locks + ") [quick: " + kQuick.locks + "]";
	text += std::string(R"(
  --cs LIST           critical-section lengths, 0..10ms (default )") + kFull.cs + ")";
	text += std::string(R"(
  --think DURATION    time between lock operations (default )") + kThink + ")";
	text += std::string(R"(
  --duration DURATION guest run length of every run, 1ms..600s (default )") + kDuration + R"();
                      under gang and adaptive VMs take 10 ms turns, and where a run ends in
                      the rotation moves its rates by up to a turn: at 2x with a co-runner
                      about 3% in 1 s, a third of that in 3 s (take 3s or more for shares))";
	text += std::string(R"(
  --repeats N         repetitions of every run; medians are reported (default )") + kFull.repeats + ")";
	text += std::string(R"(
  --fairness on|off   add the cpu-bound co-runner runs (default )") + kFull.fairness + ") [quick: " + kQuick.fairness + "]";
	text += std::string(R"(
  --quick             the small matrix above (about a minute inside the emulated KVM host)

Host:
  --pcpus LIST        the pool of host CPUs (default )") + kPcpus + ")";
	text += std::string(R"(
  --vcpus N           N, the vCPUs of a full VM (default: the pool's size, so k homogeneous
                      VMs are k x overcommitted)
  --run-timeout DUR   wall-clock limit of one run, at most 7 days; a run that hits it is
                      recorded as failed (default )") + kRunTimeout + ")";
	text += std::string(R"(
  --out DIR           output directory, created if missing (default bench-results)
  -h, --help          this help

Writes DIR/runs.csv and DIR/runs.json (one row per run, raw), DIR/summary.md (tables of medians)
and DIR/summary.csv (medians for bench/plot.gp), rewritten after every run. Each records the host
(kvm, emulated or kvm-in-qemu; CPU model, kernel, CPUs), the spindle version, date and command.
Every run records the CPU time the host below took from this machine (the steal column of
/proc/stat); summary.md counts the runs where it took more than 5%: read their numbers with care.
A failed run is recorded with its reason and the matrix goes on (exit 0). SIGINT, SIGTERM or
SIGHUP stops the current run, keeps every finished run and writes the files (exit 130).
bench/run-matrix runs this on a KVM host or inside the emulated one, then draws the plots.
)");
	return text;
}

} // namespace spindle::bench

#include "sched/options.h"

#include <array>
#include <functional>
#include <initializer_list>

#include "common/flag_table.h"
#include "common/parse.h"

namespace spindle::sched {

namespace {

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kS = 1'000'000'000;

const std::array<std::pair<PolicyKind, PolicyDescription>, 7> kPolicies = { {
	{ PolicyKind::Cfs, { "cfs", "stock Linux scheduling of pinned vCPU threads, no reaction (baseline)" } },
	{ PolicyKind::Yield, { "yield", "a spinning vCPU gives up its CPU for a bounded time (stock Xen on PLE)" } },
	{ PolicyKind::Coboost, { "coboost", "boost the runnable siblings of a spinning vCPU for a short slice" } },
	{ PolicyKind::Extend, { "extend", "do not preempt a vCPU whose hint says it holds a lock (bounded)" } },
	{ PolicyKind::Express, { "express", "run a de-scheduled vCPU named as holder or next waiter at once, briefly" } },
	{ PolicyKind::Gang, { "gang", "all vCPUs of a VM run together, VMs take turns (baseline)" } },
	{ PolicyKind::Adaptive,
	  { "adaptive",
	    "extension, express or co-boost by what is known, bounds adapted; gang-like turns while the spinning VMs are as wide as the pool" } },
} };

Status durationFlag(uint64_t &field, std::string_view flag, std::string_view value, uint64_t min, uint64_t max)
{
	auto ns = parseDurationNs(value);
	if (!ns)
		return ns.error().wrap("--" + std::string(flag));
	if (*ns < min || *ns > max)
		return Error::invalid("--" + std::string(flag) + " " + std::string(value) + " is out of range [" +
				      std::to_string(min) + "ns, " + std::to_string(max) + "ns]");
	field = *ns;
	return {};
}

template<typename T>
Status unsignedFlag(T &field, std::string_view flag, std::string_view value, uint64_t min, uint64_t max)
{
	auto n = parseUnsigned(value, min, max);
	if (!n)
		return n.error().wrap("--" + std::string(flag));
	field = static_cast<T>(*n);
	return {};
}

// A flag that takes one of a few names: "--flag: unknown <noun> 'x' (use a, b or c)" otherwise.
template<typename T>
Status choiceFlag(T &field, std::string_view flag, std::string_view noun, std::string_view value,
		  std::initializer_list<std::pair<std::string_view, T>> choices)
{
	std::string names;
	size_t i = 0;
	for (const auto &[name, choice] : choices) {
		if (name == value) {
			field = choice;
			return {};
		}
		names += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(name);
		++i;
	}
	return Error::invalid("--" + std::string(flag) + ": unknown " + std::string(noun) + " '" + std::string(value) +
			      "' (use " + names + ")");
}

Status detectFlag(SchedulerOptions &o, std::string_view value)
{
	bool ple = false, pattern = false, pv = false, hints = false, sample = false;
	if (value != "none") {
		for (const std::string &item : split(value, ',')) {
			if (item == "ple")
				ple = true;
			else if (item == "pattern")
				pattern = true;
			else if (item == "pv")
				pv = true;
			else if (item == "hints")
				hints = true;
			else if (item == "sample")
				sample = true;
			else if (item == "all")
				ple = pattern = pv = hints = sample = true;
			else
				return Error::invalid("--detect: unknown detector '" + item +
						      "' (use ple, pattern, pv, hints, sample, all or none)");
		}
	}
	o.detectPle = ple;
	o.detectPattern = pattern;
	o.detectPv = pv;
	o.detectHints = hints;
	o.detectSample = sample;
	o.sampleWherePauseNeverExits = false; // an explicit list says exactly what runs
	return {};
}

std::vector<Flag<SchedulerOptions>> allFlags()
{
	using O = SchedulerOptions;
	return {
		{ "policy", "NAME", "scheduler policy: cfs, yield, coboost, extend, express, gang, adaptive (default cfs)",
		  [](O &o, const std::string &v) -> Status {
			  auto kind = parsePolicyName(v);
			  if (!kind)
				  return kind.error();
			  o.policy = *kind;
			  return {};
		  } },
		{ "sched-tick", "DURATION", "sampling period of hints, thread states and counters (default 1ms, 100us..100ms); while gang or adaptive runs turns the tick comes at each turn's end instead",
		  [](O &o, const std::string &v) { return durationFlag(o.tickNs, "sched-tick", v, 100 * kUs, 100 * kMs); } },
		{ "quiet-tick", "DURATION", "tick while nothing spins (under cfs, and adaptive with no vCPU waiting for a CPU: spins do not count) or is boosted (default 10ms, 100us..1s; a value up to --sched-tick turns it off)",
		  [](O &o, const std::string &v) { return durationFlag(o.quietTickNs, "quiet-tick", v, 100 * kUs, kS); } },
		{ "tick-backoff", "DURATION", "longest fast tick: each tick that finds no spin wait and grants no boost doubles the period up to this, the next spin or boost brings back --sched-tick (default 4ms, 100us..100ms; a value up to --sched-tick turns it off)",
		  [](O &o, const std::string &v) { return durationFlag(o.tickBackoffNs, "tick-backoff", v, 100 * kUs, 100 * kMs); } },
		{ "boost-slice", "DURATION", "co-boost slice (default 1ms, 50us..100ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.boostSliceNs, "boost-slice", v, 50 * kUs, 100 * kMs); } },
		{ "yield-time", "DURATION", "yield: how long a spinner is deprioritized (default 500us, 10us..10ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.yieldNs, "yield-time", v, 10 * kUs, 10 * kMs); } },
		{ "yield-interval", "DURATION", "yield: at most one yield per vCPU per interval (default 2ms, 0..1s)",
		  [](O &o, const std::string &v) { return durationFlag(o.yieldMinIntervalNs, "yield-interval", v, 0, kS); } },
		{ "extend-max", "DURATION", "extend: longest extension (default 500us, 10us..10ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.extendMaxNs, "extend-max", v, 10 * kUs, 10 * kMs); } },
		{ "extend-count", "N", "extend: extensions per vCPU per window (default 4, 1..1000)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.extendMaxPerWindow, "extend-count", v, 1, 1000); } },
		{ "extend-window", "DURATION", "extend: window of --extend-count (default 10ms, 1ms..10s)",
		  [](O &o, const std::string &v) { return durationFlag(o.extendWindowNs, "extend-window", v, kMs, 10 * kS); } },
		{ "express-window", "DURATION", "express: run time granted (default 50us, 10us..10ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.expressNs, "express-window", v, 10 * kUs, 10 * kMs); } },
		{ "express-interval", "DURATION", "express: at most once per vCPU per interval (default 1ms, 0..1s)",
		  [](O &o, const std::string &v) { return durationFlag(o.expressMinIntervalNs, "express-interval", v, 0, kS); } },
		{ "gang-quantum", "DURATION", "gang and adaptive's turns: a VM's turn on the pool (default 10ms, 1ms..1s)",
		  [](O &o, const std::string &v) { return durationFlag(o.gangQuantumNs, "gang-quantum", v, kMs, kS); } },
		{ "repay-percent", "N", "ledger: debt repaid at N% of wall time (default 25, 1..100)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.repayPercent, "repay-percent", v, 1, 100); } },
		{ "debt-nice", "N", "ledger: nice increment while in debt (default 5, 1..19)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.debtNice, "debt-nice", v, 1, 19); } },
		{ "pv-min-interval", "DURATION", "long-spin notifications accepted per vCPU at most once per interval (default 100us, 0..1s)",
		  [](O &o, const std::string &v) { return durationFlag(o.pvMinIntervalNs, "pv-min-interval", v, 0, kS); } },
		{ "spin-low", "N", "pattern detector: PAUSE exits per tick below which a vCPU is not spinning (default 2)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.spinLow, "spin-low", v, 0, 1'000'000); } },
		{ "spin-high", "N", "pattern detector: PAUSE exits per tick above which a vCPU spins (default 8)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.spinHigh, "spin-high", v, 0, 1'000'000); } },
		{ "adapt-min-slice", "DURATION", "adaptive: smallest co-boost slice (default 250us, 50us..100ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.adaptMinSliceNs, "adapt-min-slice", v, 50 * kUs, 100 * kMs); } },
		{ "adapt-max-slice", "DURATION", "adaptive: largest co-boost slice (default 2ms, 50us..100ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.adaptMaxSliceNs, "adapt-max-slice", v, 50 * kUs, 100 * kMs); } },
		{ "extend-poll", "DURATION", "extend: hint re-read period while an extension runs (default 100us, 10us..1ms)",
		  [](O &o, const std::string &v) { return durationFlag(o.extendPollNs, "extend-poll", v, 10 * kUs, kMs); } },
		{ "share-window", "DURATION", "share guard: window of each VM's CPU balance (default 100ms, 10ms..10s)",
		  [](O &o, const std::string &v) { return durationFlag(o.shareWindowNs, "share-window", v, 10 * kMs, 10 * kS); } },
		{ "share-slack", "N", "share guard: % of its share a VM may exceed before it is held back (default 5, 0..100)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.shareSlackPercent, "share-slack", v, 0, 100); } },
		{ "sample-rate", "HZ", "sampling detector: RIP samples per second of a running vCPU (default 1000, 10..10000)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.sampleRateHz, "sample-rate", v, 10, 10000); } },
		{ "sample-window", "N", "sampling detector: samples its history looks back on (default 3, 2..64)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.sampleWindow, "sample-window", v, 2, 64); } },
		{ "sample-low", "N", "sampling detector: spin-like samples in the window below which a vCPU is not spinning (default 1)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.sampleLow, "sample-low", v, 0, 63); } },
		{ "sample-high", "N", "sampling detector: spin-like samples in the window above which it spins (default 1)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.sampleHigh, "sample-high", v, 0, 63); } },
		{ "detect", "LIST", "spin detectors: ple,pattern,pv,hints,sample, all or none (default: all but sample, plus sample where PAUSE never exits; a VM that sends PV long-spin reports is no longer sampled)",
		  [](O &o, const std::string &v) { return detectFlag(o, v); } },
		{ "boost-class", "CLASS", "fifo (pinned SCHED_FIFO, ended by the scheduler) or deadline (SCHED_DEADLINE budget, ended by the scheduler or else by the kernel at its next tick; FIFO fallback) (default fifo)",
		  [](O &o, const std::string &v) {
			  return choiceFlag(o.boostClass, "boost-class", "class", v,
					    { { "deadline", BoostClass::Deadline }, { "fifo", BoostClass::Fifo } });
		  } },
		{ "fifo-priority", "N", "SCHED_FIFO priority of a boosted thread; the scheduler thread takes N+1 while boosts run (default 10, 1..98)",
		  [](O &o, const std::string &v) { return unsignedFlag(o.fifoPriority, "fifo-priority", v, 1, 98); } },
		{ "thread-states", "SOURCE", "how vCPU thread states are observed each tick: switch (sched:sched_switch events), proc (/proc reads) or auto (switch where allowed) (default auto)",
		  [](O &o, const std::string &v) {
			  using S = SchedulerOptions::ThreadStateSource;
			  return choiceFlag(o.threadStates, "thread-states", "source", v,
					    { { "auto", S::Auto }, { "switch", S::Switch }, { "proc", S::Proc } });
		  } },
		{ "event-loop", "KIND", "uring (epoll if io_uring is unavailable) or epoll (default uring)",
		  [](O &o, const std::string &v) {
			  return choiceFlag(o.forceEpoll, "event-loop", "kind", v, { { "uring", false }, { "epoll", true } });
		  } },
		{ "trace", "PATH", "write a timeline of scheduler events to PATH (see --trace-format)",
		  [](O &o, const std::string &v) -> Status {
			  if (v.empty())
				  return Error::invalid("--trace: empty path");
			  o.tracePath = std::string(v);
			  return {};
		  } },
		{ "trace-format", "FORMAT", "--trace as jsonl (JSON lines, as events happen) or perfetto (trace-event JSON for ui.perfetto.dev, written at the end) (default jsonl)",
		  [](O &o, const std::string &v) {
			  return choiceFlag(o.traceFormat, "trace-format", "format", v,
					    { { "jsonl", TraceFormat::JsonLines }, { "perfetto", TraceFormat::Perfetto } });
		  } },
	};
}

} // namespace

Result<PolicyKind> parsePolicyName(std::string_view name)
{
	for (const auto &[kind, description] : kPolicies)
		if (description.name == name)
			return kind;
	std::string known;
	for (const auto &entry : kPolicies)
		known += (known.empty() ? "" : ", ") + std::string(entry.second.name);
	return Error::invalid("unknown scheduler policy '" + std::string(name) + "' (known: " + known + ")");
}

std::string_view policyName(PolicyKind kind)
{
	for (const auto &[k, description] : kPolicies)
		if (k == kind)
			return description.name;
	return "?";
}

const std::vector<PolicyDescription> &policyDescriptions()
{
	static const std::vector<PolicyDescription> list = [] {
		std::vector<PolicyDescription> out;
		for (const auto &entry : kPolicies)
			out.push_back(entry.second);
		return out;
	}();
	return list;
}

const FlagTable<SchedulerOptions> &schedFlagTable(bool withRunFlags)
{
	static const FlagTable<SchedulerOptions> all(allFlags());
	static const FlagTable<SchedulerOptions> bounds([] {
		std::vector<Flag<SchedulerOptions>> flags;
		for (const auto &flag : allFlags())
			if (flag.name != "policy" && flag.name != "trace")
				flags.push_back(flag);
		return flags;
	}());
	return withRunFlags ? all : bounds;
}

const std::vector<FlagDescription> &schedFlags()
{
	static const std::vector<FlagDescription> list = [] {
		std::vector<FlagDescription> out;
		for (const auto &flag : schedFlagTable(true).flags())
			out.push_back({flag.name, flag.value, flag.help});
		return out;
	}();
	return list;
}

Status applySchedFlag(SchedulerOptions &options, std::string_view name, std::string_view value)
{
	const Flag<SchedulerOptions> *flag = schedFlagTable(true).find(name);
	if (!flag)
		return Error::invalid("unknown scheduler flag '--" + std::string(name.substr(name.substr(0, 2) == "--" ? 2 : 0)) + "'");
	return flag->apply(options, std::string(value));
}

Status validateOptions(const SchedulerOptions &o)
{
	if (!(o.sampleLow <= o.sampleHigh && o.sampleHigh < o.sampleWindow))
		return Error::invalid("--sample-low (" + std::to_string(o.sampleLow) + ") <= --sample-high (" +
				      std::to_string(o.sampleHigh) + ") < --sample-window (" + std::to_string(o.sampleWindow) +
				      ") must hold");
	if (o.spinLow > o.spinHigh)
		return Error::invalid("--spin-low (" + std::to_string(o.spinLow) + ") must not exceed --spin-high (" +
				      std::to_string(o.spinHigh) + ")");
	if (o.adaptMinSliceNs > o.adaptMaxSliceNs)
		return Error::invalid("--adapt-min-slice must not exceed --adapt-max-slice");
	if (o.extendMaxNs * o.extendMaxPerWindow > o.extendWindowNs)
		return Error::invalid("--extend-max x --extend-count exceeds --extend-window: extensions could "
				      "take the whole window");
	if (o.debtNice < 1 || o.debtNice > 19)
		return Error::invalid("--debt-nice must be in [1, 19]");
	if (o.repayPercent < 1 || o.repayPercent > 100)
		return Error::invalid("--repay-percent must be in [1, 100]");
	if (o.fifoPriority < 1 || o.fifoPriority > 98)
		return Error::invalid("--fifo-priority must be in [1, 98]");
	if (o.shareSlackPercent > 100)
		return Error::invalid("--share-slack must be in [0, 100]");
	// Said rather than ignored: the user asked for a file and would find none.
	if (o.traceFormat != TraceFormat::JsonLines && o.tracePath.empty())
		return Error::invalid("--trace-format perfetto needs --trace PATH");
	return {};
}

bool policyIsShareGuarded(PolicyKind kind)
{
	switch (kind) {
	case PolicyKind::Coboost:
	case PolicyKind::Extend:
	case PolicyKind::Express:
	case PolicyKind::Adaptive: return true;
	case PolicyKind::Cfs:
	case PolicyKind::Yield:
	case PolicyKind::Gang: return false;
	}
	return false;
}

bool policyReactsToSpins(PolicyKind kind)
{
	switch (kind) {
	case PolicyKind::Yield:
	case PolicyKind::Coboost:
	case PolicyKind::Express:
	case PolicyKind::Adaptive: return true;
	case PolicyKind::Cfs:
	case PolicyKind::Extend:
	case PolicyKind::Gang: return false;
	}
	return false;
}

Status checkVmFitsPolicy(PolicyKind kind, std::string_view vmName, unsigned vcpus, size_t poolCpus)
{
	if (kind == PolicyKind::Gang && vcpus > poolCpus)
		return Error::invalid("gang needs a pool at least as large as each VM: " + std::string(vmName) + " has " +
				      std::to_string(vcpus) + " vCPUs, the pool " + std::to_string(poolCpus) +
				      " CPUs (see --pcpus)");
	return {};
}

} // namespace spindle::sched

#include "bench/harness/matrix.h"

#include <algorithm>

#include "common/parse.h"

namespace spindle::bench {

namespace {

constexpr std::string_view kNoPleSuffix = "-nople";
constexpr std::string_view kDeadlineSuffix = "-dl";
constexpr unsigned kMaxOvercommit = 64;
constexpr uint64_t kMaxCsNs = 10'000'000; // the guest's own limit (guest-kernels/README.md)

// Splits a comma-separated list, rejecting an empty list and empty items.
Result<std::vector<std::string>> splitList(std::string_view text, std::string_view what)
{
	if (text.empty())
		return Error::invalid("empty " + std::string(what) + " list");
	std::vector<std::string> items = split(text, ',');
	for (const std::string &item : items) {
		if (item.empty())
			return Error::invalid("empty item in " + std::string(what) + " list '" + std::string(text) + "'");
	}
	return items;
}

// "a, b, c", for the error lines that list what is known.
std::string joinedNames(const std::vector<std::string> &names)
{
	std::string out;
	for (const std::string &name : names)
		out += (out.empty() ? "" : ", ") + name;
	return out;
}

template<typename T>
bool contains(const std::vector<T> &items, const T &item)
{
	return std::find(items.begin(), items.end(), item) != items.end();
}

} // namespace

std::string PolicyVariant::label() const
{
	return policy + std::string(deadlineBoosts ? kDeadlineSuffix : "") + std::string(pauseExits ? "" : kNoPleSuffix);
}

std::string_view runKindName(RunKind kind)
{
	switch (kind) {
	case RunKind::Alone: return "alone";
	case RunKind::CpuAlone: return "cpu-alone";
	case RunKind::Cell: return "cell";
	case RunKind::Fairness: return "fairness";
	}
	return "?";
}

const std::vector<std::string> &knownLocks()
{
	static const std::vector<std::string> locks = { "ticket", "tas", "ttas", "mcs", "qspin", "pvticket", "pvhalt" };
	return locks;
}

Result<std::vector<PolicyVariant>> parsePolicyList(std::string_view text, const std::vector<std::string> &knownPolicies)
{
	auto items = splitList(text, "policy");
	if (!items)
		return items.error();
	std::vector<PolicyVariant> variants;
	for (const std::string &item : *items) {
		PolicyVariant variant{ item, true, false };
		if (variant.policy.size() > kNoPleSuffix.size() && variant.policy.ends_with(kNoPleSuffix)) {
			variant.policy.resize(variant.policy.size() - kNoPleSuffix.size());
			variant.pauseExits = false;
		}
		if (variant.policy.size() > kDeadlineSuffix.size() && variant.policy.ends_with(kDeadlineSuffix)) {
			variant.policy.resize(variant.policy.size() - kDeadlineSuffix.size());
			variant.deadlineBoosts = true;
		}
		if (!contains(knownPolicies, variant.policy))
			return Error::invalid("unknown policy '" + item + "' (expected one of " + joinedNames(knownPolicies) +
					      ", each optionally with -dl, -nople or -dl-nople)");
		if (contains(variants, variant))
			return Error::invalid("policy '" + item + "' listed twice");
		variants.push_back(variant);
	}
	return variants;
}

Result<std::vector<unsigned>> parseOvercommitList(std::string_view text)
{
	auto items = splitList(text, "overcommit");
	if (!items)
		return items.error();
	std::vector<unsigned> factors;
	for (const std::string &item : *items) {
		// "2x" reads naturally next to the tables; accept it.
		std::string_view digits = item;
		if (digits.ends_with('x'))
			digits.remove_suffix(1);
		auto value = parseUnsigned(digits, 1, kMaxOvercommit);
		if (!value)
			return Error::invalid("bad overcommit factor '" + item + "': " + value.error().message() +
					      " (expected 1.." + std::to_string(kMaxOvercommit) + ")");
		const auto factor = static_cast<unsigned>(*value);
		if (contains(factors, factor))
			return Error::invalid("overcommit factor " + item + " listed twice");
		factors.push_back(factor);
	}
	return factors;
}

Result<std::vector<std::string>> parseLockList(std::string_view text)
{
	auto items = splitList(text, "lock");
	if (!items)
		return items.error();
	for (size_t i = 0; i < items->size(); ++i) {
		const std::string &item = (*items)[i];
		if (!contains(knownLocks(), item))
			return Error::invalid("unknown lock '" + item + "' (expected ticket, tas, ttas, mcs, qspin, pvticket, pvhalt)");
		if (std::find(items->begin(), items->begin() + static_cast<long>(i), item) != items->begin() + static_cast<long>(i))
			return Error::invalid("lock '" + item + "' listed twice");
	}
	return items;
}

Result<std::vector<uint64_t>> parseCsList(std::string_view text)
{
	auto items = splitList(text, "critical-section");
	if (!items)
		return items.error();
	std::vector<uint64_t> lengths;
	for (const std::string &item : *items) {
		uint64_t ns = 0;
		if (item != "0") {
			auto value = parseDurationNs(item);
			if (!value)
				return Error::invalid("bad critical-section length: " + value.error().message());
			ns = *value;
		}
		if (ns > kMaxCsNs)
			return Error::invalid("critical-section length " + item + " is longer than the guest allows (10ms)");
		if (contains(lengths, ns))
			return Error::invalid("critical-section length " + item + " listed twice");
		lengths.push_back(ns);
	}
	return lengths;
}

Result<std::vector<std::string>> parseScenarioList(std::string_view text)
{
	std::vector<std::string> knownNames;
	for (const ScenarioInfo &scenario : knownScenarios())
		knownNames.emplace_back(scenario.name);
	if (text == "all")
		return knownNames;
	auto items = splitList(text, "scenario");
	if (!items)
		return items.error();
	std::vector<std::string> names;
	for (const std::string &item : *items) {
		if (item == "all")
			return Error::invalid("'all' stands alone, not in a list ('" + std::string(text) + "')");
		if (!contains(knownNames, item))
			return Error::invalid("unknown scenario '" + item + "' (expected " + joinedNames(knownNames) + ", or all)");
		if (contains(names, item))
			return Error::invalid("scenario '" + item + "' listed twice");
		names.push_back(item);
	}
	return names;
}

Status validateMatrix(const MatrixSpec &spec)
{
	if (spec.scenarios.empty() || spec.policies.empty() || spec.overcommit.empty() || spec.locks.empty() ||
	    spec.csNs.empty())
		return Error::invalid("the matrix needs at least one scenario, policy, overcommit factor, lock and "
				      "critical-section length");
	if (spec.repeats == 0)
		return Error::invalid("repeats must be at least 1");
	if (spec.durationNs == 0)
		return Error::invalid("the guest duration must be longer than 0");
	if (spec.thinkNs > kMaxCsNs)
		return Error::invalid("think time is longer than the guest allows (10ms)");
	if (spec.poolCpus == 0 || spec.vcpusPerVm == 0)
		return Error::invalid("the pool and every VM need at least one CPU");
	return {};
}

std::vector<RunPlan> expandMatrix(const MatrixSpec &spec)
{
	// One alone baseline per PAUSE-exit setting the policies use: a VM's throughput alone
	// already depends on it (inside the emulated host every PAUSE exits), and efficiency is
	// about sharing, not about that.
	std::vector<PolicyVariant> baselines;
	for (const PolicyVariant &policy : spec.policies) {
		const PolicyVariant baseline{ "cfs", policy.pauseExits };
		if (!contains(baselines, baseline))
			baselines.push_back(baseline);
	}
	const VmTemplate coRunner = cpuVmTemplate(spec.vcpusPerVm, spec.durationNs);
	std::vector<RunPlan> runs;
	for (unsigned repeat = 0; repeat < spec.repeats; ++repeat) {
		for (const std::string &scenario : spec.scenarios) {
			// Alone runs of this scenario in this repetition, by template and PLE setting.
			std::vector<std::pair<VmTemplate, bool>> measured;
			auto alone = [&](const VmTemplate &vm, const std::string &lock, uint64_t cs) {
				const bool cpu = vm.role == VmRole::Cpu;
				for (const PolicyVariant &baseline : baselines) {
					// A cpu VM never executes PAUSE: the PLE setting cannot change it.
					const PolicyVariant policy = cpu ? PolicyVariant{ "cfs", true } : baseline;
					if (contains(measured, { vm, policy.pauseExits }))
						continue;
					measured.push_back({ vm, policy.pauseExits });
					RunPlan run{ cpu ? RunKind::CpuAlone : RunKind::Alone, policy, cpu ? 0u : 1u,
						     vm.role == VmRole::Lock ? lock : "", vm.role == VmRole::Lock ? cs : 0,
						     repeat, scenario, { vm }, std::nullopt, spec.poolCpus };
					runs.push_back(std::move(run));
				}
			};
			if (spec.fairness)
				alone(coRunner, "", 0);
			for (const std::string &lock : scenarioLocks(scenario, spec.locks)) {
				for (uint64_t cs : spec.csNs) {
					const ScenarioParams params{ lock, cs, spec.thinkNs, spec.durationNs, spec.vcpusPerVm };
					for (unsigned k : spec.overcommit) {
						for (const VmTemplate &vm : scenarioVms(scenario, k, params))
							alone(vm, lock, cs);
					}
					for (unsigned k : spec.overcommit) {
						const std::vector<VmTemplate> vms = scenarioVms(scenario, k, params);
						for (const PolicyVariant &policy : spec.policies) {
							runs.push_back({ RunKind::Cell, policy, k, lock, cs, repeat, scenario, vms,
									 std::nullopt, spec.poolCpus });
							if (spec.fairness)
								runs.push_back({ RunKind::Fairness, policy, k, lock, cs, repeat,
										 scenario, vms, coRunner, spec.poolCpus });
						}
					}
				}
			}
		}
	}
	return runs;
}

std::string formatDuration(uint64_t ns)
{
	if (ns == 0)
		return "0";
	struct Unit {
		uint64_t scale;
		const char *name;
	};
	for (Unit unit : { Unit{ 1'000'000'000, "s" }, Unit{ 1'000'000, "ms" }, Unit{ 1'000, "us" } }) {
		if (ns % unit.scale == 0)
			return std::to_string(ns / unit.scale) + unit.name;
	}
	return std::to_string(ns) + "ns";
}

} // namespace spindle::bench

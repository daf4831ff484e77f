// Fuzzes the benchmark matrix (bench/harness/matrix.h): the four list parsers, the expansion into
// runs, and the duration labels.
//
// Input: a flags byte (repeats 1..4, fairness), 8 bytes of a duration for formatDuration, then up
// to four NUL-separated lists: policies, overcommit factors, locks, critical-section lengths.
// Contract:
//   every list parser rejects empty lists and items, duplicates and unknown names; it accepts
//     exactly the lists of known policies (each optionally NAME-dl, NAME-nople or NAME-dl-nople),
//     factors 1..64 (optionally with an 'x'), known locks, and durations (or 0) up to 10ms,
//     returned in order;
//   a matrix of accepted lists validates, and expands to repeats x (fairness + locks x cs x
//     (alone baselines + overcommit x policies x (1 + fairness))) runs, ordered by repetition,
//     each made of the matrix's own values, every cell preceded in its repetition by the alone
//     run it is divided by (same lock, cs and PLE setting);
//   formatDuration(ns) parses back to ns.

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bench/harness/matrix.h"
#include "common/parse.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/oracles.h"

using namespace spindle;
using namespace spindle::bench;
using namespace spindle::fuzz;

namespace {

const std::vector<std::string> kPolicies = { "cfs", "yield", "coboost", "extend", "express", "gang", "adaptive" };

// Items of a comma-separated list, or nullopt for an empty list or an empty item.
std::optional<std::vector<std::string>> items(std::string_view text)
{
	if (text.empty())
		return std::nullopt;
	std::vector<std::string> out = split(text, ',');
	if (std::any_of(out.begin(), out.end(), [](const std::string &item) { return item.empty(); }))
		return std::nullopt;
	return out;
}

std::optional<std::vector<PolicyVariant>> checkPolicies(std::string_view text)
{
	const auto parsed = parsePolicyList(text, kPolicies);
	std::optional<std::vector<std::string>> list = items(text);
	bool valid = list.has_value() && unique(*list);
	if (valid) {
		for (const std::string &item : *list) {
			std::string name = item;
			if (name.size() > 6 && name.ends_with("-nople"))
				name.resize(name.size() - 6);
			if (name.size() > 3 && name.ends_with("-dl"))
				name.resize(name.size() - 3);
			valid = valid && std::find(kPolicies.begin(), kPolicies.end(), name) != kPolicies.end();
		}
	}
	FUZZ_REQUIRE(parsed.ok() == valid);
	if (!parsed) {
		requireInputError(parsed.error());
		return std::nullopt;
	}
	FUZZ_REQUIRE(parsed->size() == list->size());
	for (size_t i = 0; i < list->size(); ++i)
		FUZZ_REQUIRE((*parsed)[i].label() == (*list)[i]);
	return *parsed;
}

std::optional<std::vector<unsigned>> checkOvercommit(std::string_view text)
{
	const auto parsed = parseOvercommitList(text);
	std::vector<unsigned> expected;
	bool valid = false;
	if (auto list = items(text)) {
		valid = true;
		for (std::string_view item : *list) {
			if (item.ends_with('x'))
				item.remove_suffix(1);
			const auto value = decimalValue(item);
			valid = valid && value && *value >= 1 && *value <= 64;
			if (valid)
				expected.push_back(static_cast<unsigned>(*value));
		}
		valid = valid && unique(expected);
	}
	FUZZ_REQUIRE(parsed.ok() == valid);
	if (!parsed) {
		requireInputError(parsed.error());
		return std::nullopt;
	}
	FUZZ_REQUIRE(*parsed == expected);
	return *parsed;
}

std::optional<std::vector<std::string>> checkLocks(std::string_view text)
{
	const auto parsed = parseLockList(text);
	auto list = items(text);
	const auto &known = knownLocks();
	const bool valid = list && unique(*list) && std::all_of(list->begin(), list->end(), [&](const std::string &item) {
		return std::find(known.begin(), known.end(), item) != known.end();
	});
	FUZZ_REQUIRE(parsed.ok() == valid);
	if (!parsed) {
		requireInputError(parsed.error());
		return std::nullopt;
	}
	FUZZ_REQUIRE(*parsed == *list);
	return *parsed;
}

std::optional<std::vector<uint64_t>> checkCs(std::string_view text)
{
	const auto parsed = parseCsList(text);
	std::vector<uint64_t> expected;
	bool valid = false, belowPrecision = false;
	if (auto list = items(text)) {
		valid = true;
		for (const std::string &item : *list) {
			std::optional<DurationReading> reading =
				item == "0" ? DurationReading{ 0, 0 } : durationValue(item);
			belowPrecision = belowPrecision || (reading && reading->fractionDigits > 9);
			valid = valid && reading && reading->ns <= 10'000'000;
			if (valid)
				expected.push_back(static_cast<uint64_t>(reading->ns));
		}
		valid = valid && unique(expected);
	}
	// More than 9 fraction digits are below the documented precision: rejecting them is fine.
	FUZZ_REQUIRE(parsed.ok() == valid || (belowPrecision && !parsed.ok()));
	if (!parsed) {
		requireInputError(parsed.error());
		return std::nullopt;
	}
	FUZZ_REQUIRE(*parsed == expected);
	return *parsed;
}

void checkExpansion(const MatrixSpec &spec)
{
	FUZZ_REQUIRE(validateMatrix(spec).ok());
	const std::vector<RunPlan> runs = expandMatrix(spec);
	std::set<bool> pleSettings;
	for (const PolicyVariant &p : spec.policies)
		pleSettings.insert(p.pauseExits);
	const size_t fairness = spec.fairness ? 1 : 0;
	const size_t perRepeat = fairness + spec.locks.size() * spec.csNs.size() *
						    (pleSettings.size() + spec.overcommit.size() * spec.policies.size() * (1 + fairness));
	FUZZ_REQUIRE(runs.size() == spec.repeats * perRepeat);

	auto has = [](const auto &values, const auto &value) {
		return std::find(values.begin(), values.end(), value) != values.end();
	};
	unsigned repeat = 0;
	std::vector<RunPlan> alone; // the alone runs of the current repetition so far
	for (const RunPlan &run : runs) {
		FUZZ_REQUIRE(run.repeat >= repeat && run.repeat < spec.repeats);
		if (run.repeat != repeat)
			alone.clear();
		repeat = run.repeat;
		switch (run.kind) {
		case RunKind::CpuAlone:
			FUZZ_REQUIRE(spec.fairness && run.lock.empty() && run.policy == (PolicyVariant{ "cfs", true }));
			break;
		case RunKind::Alone:
			FUZZ_REQUIRE(run.policy.policy == "cfs" && pleSettings.count(run.policy.pauseExits));
			FUZZ_REQUIRE(run.overcommit == 1 && has(spec.locks, run.lock) && has(spec.csNs, run.csNs));
			alone.push_back(run);
			break;
		case RunKind::Cell:
		case RunKind::Fairness: {
			FUZZ_REQUIRE(run.kind == RunKind::Cell || spec.fairness);
			FUZZ_REQUIRE(has(spec.policies, run.policy) && has(spec.overcommit, run.overcommit));
			FUZZ_REQUIRE(has(spec.locks, run.lock) && has(spec.csNs, run.csNs));
			const bool measuredBefore = std::any_of(alone.begin(), alone.end(), [&](const RunPlan &a) {
				return a.lock == run.lock && a.csNs == run.csNs && a.policy.pauseExits == run.policy.pauseExits;
			});
			FUZZ_REQUIRE(measuredBefore);
			break;
		}
		}
	}
}

void checkFormatDuration(uint64_t ns)
{
	const std::string label = formatDuration(ns);
	if (ns == 0) {
		FUZZ_REQUIRE(label == "0");
		return;
	}
	const auto parsed = parseDurationNs(label);
	FUZZ_REQUIRE(parsed.ok() && *parsed == ns);
}

// Checks list `index` (when there is one) and keeps what it accepts in `field`; false when the
// list is missing or rejected.
template<typename T, typename Check>
bool takeList(const std::vector<std::string> &lists, size_t index, Check check, std::vector<T> &field)
{
	if (index >= lists.size())
		return false;
	auto parsed = check(lists[index]);
	if (!parsed)
		return false;
	field = std::move(*parsed);
	return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	const uint8_t flags = in.take<uint8_t>();
	checkFormatDuration(in.take<uint64_t>());
	const std::vector<std::string> lists = splitArguments(in.restText());

	MatrixSpec spec;
	spec.repeats = 1 + (flags & 3);
	spec.fairness = flags & 4;
	// Every list present is checked, even after one was rejected.
	bool complete = takeList(lists, 0, checkPolicies, spec.policies);
	complete = takeList(lists, 1, checkOvercommit, spec.overcommit) && complete;
	complete = takeList(lists, 2, checkLocks, spec.locks) && complete;
	complete = takeList(lists, 3, checkCs, spec.csNs) && complete;
	for (uint64_t cs : spec.csNs)
		checkFormatDuration(cs);
	if (complete)
		checkExpansion(spec);
	else if (spec.policies.empty() || spec.overcommit.empty() || spec.locks.empty() || spec.csNs.empty())
		FUZZ_REQUIRE(!validateMatrix(spec).ok());
	return 0;
}

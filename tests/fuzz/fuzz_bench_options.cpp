// Fuzzes `spindle bench` option parsing (bench/harness/options.h) with whole argument vectors.
//
// Input: the arguments after "bench", separated by NUL bytes.
// Contract: parseBenchOptions() either rejects the arguments with an input error or returns
// options every run of the matrix can use as they are: a matrix that validates, with non-empty
// lists of unique known policies, factors 1..64, known locks, cs 0..10ms; think 0..10ms; duration
// 1ms..600s; repeats 1..1000; a pool of CPUs that is sorted, unique and within 0..4095; 1..256
// vCPUs per VM (SPINDLE_MAX_VCPUS); a non-empty output directory; and a run timeout no shorter
// than the duration and no longer than 7 days (as spindle run's --timeout).

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "bench/harness/options.h"
#include "guest-kernels/abi/spindle_abi.h"
#include "tests/fuzz/fuzz.h"

using namespace spindle;
using namespace spindle::bench;
using namespace spindle::fuzz;

namespace {

const std::vector<std::string> kPolicies = { "cfs", "yield", "coboost", "extend", "express", "gang", "adaptive" };

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::vector<std::string> args = splitArguments(asText(data, size));
	const auto options = parseBenchOptions(args, kPolicies);
	if (!options) {
		requireInputError(options.error());
		return 0;
	}

	const MatrixSpec &m = options->matrix;
	FUZZ_REQUIRE(validateMatrix(m).ok());
	FUZZ_REQUIRE(!m.policies.empty() && !m.overcommit.empty() && !m.locks.empty() && !m.csNs.empty());
	std::set<std::string> labels;
	for (const PolicyVariant &p : m.policies) {
		FUZZ_REQUIRE(std::find(kPolicies.begin(), kPolicies.end(), p.policy) != kPolicies.end());
		labels.insert(p.label());
	}
	FUZZ_REQUIRE(labels.size() == m.policies.size());
	FUZZ_REQUIRE(unique(m.overcommit) && unique(m.locks) && unique(m.csNs));
	for (unsigned k : m.overcommit)
		FUZZ_REQUIRE(k >= 1 && k <= 64);
	for (const std::string &lock : m.locks)
		FUZZ_REQUIRE(std::find(knownLocks().begin(), knownLocks().end(), lock) != knownLocks().end());
	for (uint64_t cs : m.csNs)
		FUZZ_REQUIRE(cs <= 10'000'000);
	FUZZ_REQUIRE(m.thinkNs <= 10'000'000);
	FUZZ_REQUIRE(m.durationNs >= 1'000'000 && m.durationNs <= 600'000'000'000);
	FUZZ_REQUIRE(m.repeats >= 1 && m.repeats <= 1000);

	FUZZ_REQUIRE(!options->pcpus.empty() && unique(options->pcpus));
	FUZZ_REQUIRE(std::is_sorted(options->pcpus.begin(), options->pcpus.end()));
	FUZZ_REQUIRE(options->pcpus.front() >= 0 && options->pcpus.back() <= 4095);
	FUZZ_REQUIRE(options->matrix.vcpusPerVm >= 1 && options->matrix.vcpusPerVm <= SPINDLE_MAX_VCPUS);
	FUZZ_REQUIRE(!options->outDir.empty());
	FUZZ_REQUIRE(options->runTimeoutNs >= m.durationNs);
	FUZZ_REQUIRE(options->runTimeoutNs <= 7ull * 24 * 3600 * 1'000'000'000);
	return 0;
}

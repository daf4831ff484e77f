// Fuzzes `spindle run` option parsing (vmm/cli/run_options.h): parseRunOptions() with whole
// argument vectors and parseVmSpec() with one --vm value.
//
// Input: a selector byte (bit 0: parseVmSpec of the rest, else parseRunOptions of the rest split
// at NUL bytes, with "boost-slice" and "tick" as the scheduler's flags).
// Contract: either an input error, or
//   a VmSpec (--vm) with a guest name without '=', 1..256 vCPUs, memory a whole number of 4 KiB
//     pages within [4M, 62G], a non-empty kernel path for guest "kernel", args split into words,
//     and a name that is empty or 1..32 letters, digits, '_', '-', '.';
//   RunOptions (unless --help) with 1..64 VMs, each with a guest name, vCPUs and memory as above
//     and a unique name of that kind, a CPU pool sorted, unique and within 0..4095, a non-empty
//     path for serial file=, a known log level, a spin threshold in 1..2^30, a timeout of at most
//     7 days (the limit of a plain --timeout SECONDS), and only scheduler flags the predicate knows.

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "guest-kernels/abi/spindle_abi.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/cli/run_options.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

bool isSchedFlag(const std::string &name)
{
	return name == "boost-slice" || name == "tick";
}

bool plainName(const std::string &name)
{
	return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
		return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
	});
}

void requireValidVm(const VmSpec &vm)
{
	FUZZ_REQUIRE(vm.guest.empty() != vm.kernelPath.empty()); // a bundled guest or an outside kernel
	FUZZ_REQUIRE(vm.cpus >= 1 && vm.cpus <= SPINDLE_MAX_VCPUS);
	FUZZ_REQUIRE(vm.memBytes % 4096 == 0);
	FUZZ_REQUIRE(vm.memBytes >= SPINDLE_MIN_MEM_BYTES && vm.memBytes <= SPINDLE_MAX_MEM_BYTES);
	FUZZ_REQUIRE(vm.name.empty() || plainName(vm.name));
}

void checkVmSpec(const std::string &text)
{
	const auto spec = parseVmSpec(text);
	if (!spec) {
		requireInputError(spec.error());
		return;
	}
	requireValidVm(*spec);
	FUZZ_REQUIRE(spec->guest.find('=') == std::string::npos);
	for (const std::string &arg : spec->args) // args="..." is split into words
		FUZZ_REQUIRE(!arg.empty() && arg.find_first_of(" \t") == std::string::npos);
	FUZZ_REQUIRE(spec->guest != "kernel"); // the older spelling of kernel=PATH
}

void checkRunOptions(const std::vector<std::string> &args)
{
	const auto options = parseRunOptions(args, isSchedFlag);
	if (!options) {
		requireInputError(options.error());
		return;
	}
	if (options->help)
		return;
	FUZZ_REQUIRE(!options->vms.empty() && options->vms.size() <= 64);
	std::set<std::string> names;
	for (const VmSpec &vm : options->vms) {
		requireValidVm(vm);
		FUZZ_REQUIRE(plainName(vm.name));
		names.insert(vm.name);
	}
	FUZZ_REQUIRE(names.size() == options->vms.size());
	const auto &pcpus = options->pcpus;
	FUZZ_REQUIRE(std::adjacent_find(pcpus.begin(), pcpus.end(), std::greater_equal<int>()) == pcpus.end());
	FUZZ_REQUIRE(pcpus.empty() || (pcpus.front() >= 0 && pcpus.back() <= 4095));
	FUZZ_REQUIRE(options->serial != SerialMode::File || !options->serialPath.empty());
	static const std::set<std::string> levels = { "trace", "debug", "info", "warn", "error", "off" };
	FUZZ_REQUIRE(levels.count(options->logLevel));
	FUZZ_REQUIRE(options->spinThreshold >= 1 && options->spinThreshold <= (1u << 30));
	FUZZ_REQUIRE(options->timeoutMs <= 7ull * 24 * 3600 * 1000);
	for (const auto &[name, value] : options->schedFlags)
		FUZZ_REQUIRE(isSchedFlag(name));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	if (in.take<uint8_t>() & 1)
		checkVmSpec(std::string(in.restText()));
	else
		checkRunOptions(splitArguments(in.restText()));
	return 0;
}

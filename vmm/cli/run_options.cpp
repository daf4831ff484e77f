#include "vmm/cli/run_options.h"

#include <algorithm>
#include <cctype>

#include "common/parse.h"
#include "spindle_abi.h"

namespace spindle {

namespace {

constexpr unsigned kMaxCpusFlag = SPINDLE_MAX_VCPUS;
constexpr uint64_t kMaxTimeoutSeconds = 7 * 24 * 3600;

Result<unsigned> parseCpus(const std::string &value)
{
	auto cpus = parseUnsigned(value, 1, kMaxCpusFlag);
	if (!cpus)
		return Error::invalid("--cpus: " + cpus.error().context());
	return static_cast<unsigned>(*cpus);
}

Result<uint64_t> parseMem(const std::string &value)
{
	auto size = parseSize(value);
	if (!size)
		return Error::invalid("--mem: " + size.error().context());
	if (*size == 0)
		return Error::invalid("--mem: guest memory cannot be zero");
	if (*size % 4096 != 0)
		return Error::invalid("--mem: " + value + " is not a whole number of 4 KiB pages");
	if (*size < SPINDLE_MIN_MEM_BYTES)
		return Error::invalid("--mem: " + value + " is below the minimum of " +
				      std::to_string(SPINDLE_MIN_MEM_BYTES >> 20) + "M");
	if (*size > SPINDLE_MAX_MEM_BYTES)
		return Error::invalid("--mem: " + value + " is above the maximum of " +
				      std::to_string(SPINDLE_MAX_MEM_BYTES >> 30) + "G");
	return *size;
}

} // namespace

std::vector<std::string> splitWords(const std::string &text)
{
	std::vector<std::string> words;
	std::string word;
	for (char c : text) {
		if (c == ' ' || c == '\t') {
			if (!word.empty())
				words.push_back(std::move(word));
			word.clear();
		} else {
			word += c;
		}
	}
	if (!word.empty())
		words.push_back(std::move(word));
	return words;
}

Result<VmSpec> parseVmSpec(const std::string &text)
{
	// Split on commas outside double quotes, so args="a=1 b=2" may hold anything but a quote.
	std::vector<std::string> fields;
	std::string field;
	bool quoted = false;
	for (char c : text) {
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (c == ',' && !quoted) {
			fields.push_back(std::move(field));
			field.clear();
			continue;
		}
		field += c;
	}
	if (quoted)
		return Error::invalid("--vm " + text + ": unbalanced quote");
	fields.push_back(std::move(field));

	VmSpec spec;
	if (fields[0].empty() || fields[0].find('=') != std::string::npos)
		return Error::invalid("--vm " + text + ": must start with a guest name (e.g. lockbench,cpus=4)");
	spec.guest = fields[0];
	for (size_t i = 1; i < fields.size(); ++i) {
		const std::string &f = fields[i];
		auto eq = f.find('=');
		if (eq == std::string::npos)
			return Error::invalid("--vm " + text + ": '" + f + "' is not key=value");
		std::string key = f.substr(0, eq), value = f.substr(eq + 1);
		if (key == "cpus") {
			auto cpus = parseCpus(value);
			if (!cpus)
				return Error::invalid("--vm " + text + ": " + cpus.error().context());
			spec.cpus = *cpus;
		} else if (key == "mem") {
			auto mem = parseMem(value);
			if (!mem)
				return Error::invalid("--vm " + text + ": " + mem.error().context());
			spec.memBytes = *mem;
		} else if (key == "args") {
			spec.args = splitWords(value);
		} else if (key == "kernel") {
			if (value.empty())
				return Error::invalid("--vm " + text + ": empty kernel path");
			spec.kernelPath = value;
		} else if (key == "name") {
			// Names prefix guest output and key metrics, results and traces: keep them plain.
			const bool plain = std::all_of(value.begin(), value.end(), [](char c) {
				return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
			});
			if (value.empty() || value.size() > 32 || !plain)
				return Error::invalid("--vm " + text + ": name must be 1..32 letters, digits, '_', '-' or '.'");
			spec.name = value;
		} else {
			return Error::invalid("--vm " + text + ": unknown key '" + key +
					      "' (expected cpus, mem, args, kernel, name)");
		}
	}
	if (spec.guest == "kernel" && spec.kernelPath.empty())
		return Error::invalid("--vm " + text + ": guest 'kernel' needs kernel=PATH");
	return spec;
}

Result<RunOptions> parseRunOptions(const std::vector<std::string> &args, SchedFlagPredicate isSchedFlag)
{
	RunOptions options;
	VmSpec single;
	bool singleGiven = false, cpusGiven = false, memGiven = false;
	std::vector<std::string> guestArgs;

	for (size_t i = 0; i < args.size(); ++i) {
		const std::string &arg = args[i];
		if (arg == "--") {
			guestArgs.assign(args.begin() + static_cast<long>(i) + 1, args.end());
			break;
		}
		// Accept both "--flag value" and "--flag=value".
		std::string name = arg, inlineValue;
		bool hasInline = false;
		if (arg.rfind("--", 0) == 0) {
			if (auto eq = arg.find('='); eq != std::string::npos) {
				name = arg.substr(0, eq);
				inlineValue = arg.substr(eq + 1);
				hasInline = true;
			}
		}
		auto value = [&]() -> Result<std::string> {
			if (hasInline)
				return inlineValue;
			if (i + 1 >= args.size())
				return Error::invalid(name + " needs a value");
			return args[++i];
		};
		auto flag = [&](auto &&apply) -> Status {
			auto v = value();
			if (!v)
				return v.error();
			return apply(*v);
		};
		Status status;

		if (name == "-h" || name == "--help") {
			options.help = true;
			return options;
		} else if (name == "-c" || name == "--cpus") {
			status = flag([&](const std::string &v) -> Status {
				auto cpus = parseCpus(v);
				if (!cpus)
					return cpus.error();
				single.cpus = *cpus;
				cpusGiven = true;
				return {};
			});
		} else if (name == "-m" || name == "--mem") {
			status = flag([&](const std::string &v) -> Status {
				auto mem = parseMem(v);
				if (!mem)
					return mem.error();
				single.memBytes = *mem;
				memGiven = true;
				return {};
			});
		} else if (name == "--kernel") {
			status = flag([&](const std::string &v) -> Status {
				if (v.empty())
					return Error::invalid("--kernel needs a path");
				single.kernelPath = v;
				return {};
			});
		} else if (name == "--vm") {
			status = flag([&](const std::string &v) -> Status {
				auto spec = parseVmSpec(v);
				if (!spec)
					return spec.error();
				options.vms.push_back(std::move(*spec));
				return {};
			});
		} else if (name == "--pcpus") {
			status = flag([&](const std::string &v) -> Status {
				auto cpus = parseCpuList(v);
				if (!cpus)
					return Error::invalid("--pcpus: " + cpus.error().context());
				options.pcpus = std::move(*cpus);
				return {};
			});
		} else if (name == "--serial") {
			status = flag([&](const std::string &v) -> Status {
				if (v == "stdout")
					options.serial = SerialMode::Stdout;
				else if (v == "off")
					options.serial = SerialMode::Off;
				else if (v.rfind("file=", 0) == 0 && v.size() > 5) {
					options.serial = SerialMode::File;
					options.serialPath = v.substr(5);
				} else
					return Error::invalid("--serial: '" + v + "' is not stdout, off or file=PATH");
				return {};
			});
		} else if (name == "--metrics" || name == "--results" || name == "--trace") {
			status = flag([&](const std::string &v) -> Status {
				if (v.empty())
					return Error::invalid(name + " needs a path");
				(name == "--metrics" ? options.metricsPath
				 : name == "--results" ? options.resultsPath
						       : options.tracePath) = v;
				return {};
			});
		} else if (name == "--timeout") {
			status = flag([&](const std::string &v) -> Status {
				// Seconds, optionally with a unit (e.g. 500ms); at most 7 days either way.
				auto plain = parseUnsigned(v, 1, kMaxTimeoutSeconds);
				if (plain) {
					options.timeoutMs = *plain * 1000;
					return {};
				}
				auto ns = parseDurationNs(v);
				if (!ns || *ns < 1000000 || *ns > kMaxTimeoutSeconds * 1'000'000'000)
					return Error::invalid("--timeout: '" + v +
							      "' is not a positive number of seconds (at most 7 days)");
				options.timeoutMs = *ns / 1000000;
				return {};
			});
		} else if (name == "--log-level") {
			status = flag([&](const std::string &v) -> Status {
				static const char *levels[] = {"trace", "debug", "info", "warn", "error", "off"};
				for (const char *level : levels)
					if (v == level) {
						options.logLevel = v;
						return {};
					}
				return Error::invalid("--log-level: '" + v + "' is not trace, debug, info, warn, error or off");
			});
		} else if (name == "--policy") {
			status = flag([&](const std::string &v) -> Status {
				options.policy = v; // validated by the scheduler, which knows its policies
				return {};
			});
		} else if (name == "--ple") {
			status = flag([&](const std::string &v) -> Status {
				if (v != "on" && v != "off")
					return Error::invalid("--ple: '" + v + "' is not on or off");
				options.pauseExits = v == "on";
				return {};
			});
		} else if (name == "--spin-threshold") {
			status = flag([&](const std::string &v) -> Status {
				auto n = parseUnsigned(v, 1, 1u << 30);
				if (!n)
					return Error::invalid("--spin-threshold: " + n.error().context());
				options.spinThreshold = static_cast<uint32_t>(*n);
				return {};
			});
		} else if (name == "--stats") {
			if (hasInline)
				return Error::invalid("--stats takes no value");
			options.stats = true;
		} else if (isSchedFlag && name.rfind("--", 0) == 0 && isSchedFlag(name.substr(2))) {
			status = flag([&](const std::string &v) -> Status {
				options.schedFlags.emplace_back(name.substr(2), v);
				return {};
			});
		} else if (arg.rfind("-", 0) == 0 && arg.size() > 1) {
			return Error::invalid("unknown option '" + arg + "' (see spindle run --help)");
		} else {
			if (singleGiven)
				return Error::invalid("more than one guest given ('" + single.guest + "' and '" + arg +
						      "'); use --vm for several VMs, and -- before guest arguments");
			single.guest = arg;
			singleGiven = true;
		}
		if (!status)
			return status.error();
	}

	const bool singleForm = singleGiven || !single.kernelPath.empty();
	if (singleForm && !options.vms.empty())
		return Error::invalid("give either one GUEST (with -c/-m/--kernel/--) or --vm specs, not both");
	if (!singleForm && options.vms.empty())
		return Error::invalid("no guest given (e.g. spindle run hello -c 4; see spindle run --help)");
	if (!singleForm && (cpusGiven || memGiven || !guestArgs.empty()))
		return Error::invalid("-c/-m and -- guest arguments apply to the single-guest form; "
				      "with --vm use cpus=, mem= and args=");
	if (singleForm) {
		if (single.guest.empty())
			single.guest = "kernel";
		else if (!single.kernelPath.empty())
			return Error::invalid("give either a bundled GUEST name or --kernel PATH, not both");
		single.args = std::move(guestArgs);
		options.vms.push_back(std::move(single));
	}
	if (options.vms.size() > 64)
		return Error::invalid("at most 64 VMs per run");
	for (size_t i = 0; i < options.vms.size(); ++i) {
		if (options.vms[i].name.empty())
			options.vms[i].name = "vm" + std::to_string(i);
		for (size_t j = 0; j < i; ++j)
			if (options.vms[j].name == options.vms[i].name)
				return Error::invalid("two VMs are named '" + options.vms[i].name + "'");
	}
	return options;
}

std::string runUsage(const std::string &policyHelp, const std::string &boundsHelp)
{
	return R"(Usage: spindle run [OPTIONS] GUEST [-- GUEST-ARGS...]
       spindle run [OPTIONS] --kernel PATH [-- GUEST-ARGS...]
       spindle run [OPTIONS] --vm SPEC [--vm SPEC...]

Boots guests on /dev/kvm, one thread per vCPU, and passes the guest's exit code on.
GUEST is a bundled guest (see `spindle guests`); GUEST-ARGS reach the guest in its boot info.

VM options (single-guest form):
  -c, --cpus N            vCPUs (1-256; default 1; at most what KVM allows)
  -m, --mem SIZE          guest RAM, K/M/G suffixes (default 64M; 4M to 62G, whole pages)
      --kernel PATH       boot an ELF64 x86-64 static executable instead of a bundled guest
      --vm SPEC           add a VM (repeatable): GUEST[,cpus=N][,mem=SIZE][,args="k=v ..."]
                          [,kernel=PATH][,name=NAME]; e.g. --vm lockbench,cpus=4,args="lock=ticket"

Scheduling:
      --policy NAME       vCPU scheduling policy (default cfs):
)" + policyHelp + R"(      --pcpus LIST        host CPUs of the pool, e.g. 0-1 or 0,2-3 (default: every online CPU
                          this process may use); vCPU threads are pinned round-robin over it,
                          VM after VM, and restored when the run ends
      --ple on|off        PAUSE interception (Pause-Loop Exiting) for every VM (default on;
                          off uses KVM_X86_DISABLE_EXITS_PAUSE)
      --spin-threshold N  spin iterations before an enlightened guest reports a long spin
                          (CPUID 0x40000001 EBX; default 2048)

Scheduler bounds (each has a default; sched/README.md explains them):
)" + boundsHelp + R"(
Output:
      --serial MODE       guest console: stdout (default), file=PATH, or off
      --metrics PATH      write per-VM and per-vCPU counters (exits, scheduler) as JSON
      --results PATH      write benchmark results (one object per VM) as JSON
      --trace PATH        write a timeline of scheduler events (JSON lines)
      --stats             print start-up time and the VMM's own memory beyond guest RAM
      --timeout SECONDS   stop every VM after this long, at most 7 days (exit status 124)
      --log-level LEVEL   trace, debug, info (default), warn, error, off
  -h, --help              show this help

Exit status: the guest's exit code (0-255) with one VM; with several, 0 if every guest
exited 0, else the first non-zero code. 1: the VM failed (triple fault, KVM error, results
failed their checks); 2: bad command line or input; 124: --timeout; 130: interrupted.
)";
}

} // namespace spindle

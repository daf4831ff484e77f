#include "vmm/cli/run_options.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/flag_table.h"
#include "common/parse.h"
#include "sched/scheduler.h"
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
	// An outside guest needs no name: --vm kernel=PATH,cpus=2.
	const bool named = fields[0].find('=') == std::string::npos;
	if (named && fields[0].empty())
		return Error::invalid("--vm " + text + ": must start with a guest name or kernel=PATH (e.g. lockbench,cpus=4)");
	if (named)
		spec.guest = fields[0];
	for (size_t i = named ? 1 : 0; i < fields.size(); ++i) {
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
		} else if (key == "guest-mode") {
			auto mode = parseGuestModeChoice(value);
			if (!mode)
				return Error::invalid("--vm " + text + ": " + mode.error().context());
			spec.guestMode = *mode;
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
					      "' (expected cpus, mem, args, kernel, name, guest-mode)");
		}
	}
	// "kernel,kernel=PATH" is the older spelling of "kernel=PATH".
	if (spec.guest == "kernel")
		spec.guest.clear();
	if (spec.guest.empty() && spec.kernelPath.empty())
		return Error::invalid("--vm " + text + ": no guest: give a bundled guest name or kernel=PATH");
	if (!spec.guest.empty() && !spec.kernelPath.empty())
		return Error::invalid("--vm " + text + ": give either the bundled guest '" + spec.guest +
				      "' or kernel=PATH, not both");
	return spec;
}

namespace {

// What the walk over argv collects before the VMs are put together.
struct RunParse {
	RunOptions options;
	VmSpec single; // the single-guest form: GUEST or --kernel, -c, -m, -- ARGS
	bool singleGiven = false, cpusGiven = false, memGiven = false;
	std::vector<std::string> guestArgs;
};

using RunFlag = Flag<RunParse>;

Status setPath(std::string &field, const std::string &flag, const std::string &value)
{
	if (value.empty())
		return Error::invalid(flag + " needs a path");
	field = value;
	return {};
}

// The flags, by section of --help.
std::vector<RunFlag> vmFlags()
{
	return {
		{"cpus", "N", "vCPUs (1-256; default 1; at most what KVM allows)",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto cpus = parseCpus(v);
			 if (!cpus)
				 return cpus.error();
			 p.single.cpus = *cpus;
			 p.cpusGiven = true;
			 return {};
		 },
		 'c'},
		{"mem", "SIZE", "guest RAM, K/M/G suffixes (default 64M; 4M to 62G, whole pages)",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto mem = parseMem(v);
			 if (!mem)
				 return mem.error();
			 p.single.memBytes = *mem;
			 p.memGiven = true;
			 return {};
		 },
		 'm'},
		{"kernel", "PATH", "boot an ELF64 x86-64 static executable instead of a bundled guest",
		 [](RunParse &p, const std::string &v) {
			 return v.empty() ? Status(Error::invalid("--kernel needs a path")) : setPath(p.single.kernelPath, "--kernel", v);
		 }},
		{"vm", "SPEC",
		 "add a VM (repeatable): GUEST[,cpus=N][,mem=SIZE][,args=\"k=v ...\"]\n"
		 "[,name=NAME][,guest-mode=MODE], or kernel=PATH[,...] instead of GUEST;\n"
		 "e.g. --vm lockbench,cpus=4,args=\"lock=ticket\"",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto spec = parseVmSpec(v);
			 if (!spec)
				 return spec.error();
			 p.options.vms.push_back(std::move(*spec));
			 return {};
		 }},
	};
}

std::vector<RunFlag> schedulingFlags(const std::string &policyHelp)
{
	static std::string help;
	help = "vCPU scheduling policy (default cfs):\n" + policyHelp;
	return {
		{"policy", "NAME", help,
		 [](RunParse &p, const std::string &v) -> Status {
			 p.options.policy = v; // validated by the scheduler, which knows its policies
			 return {};
		 }},
		{"pcpus", "LIST",
		 "host CPUs of the pool, e.g. 0-1 or 0,2-3 (default: every online CPU\n"
		 "this process may use); vCPU threads are pinned round-robin over it,\n"
		 "VM after VM, and restored when the run ends",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto cpus = parseCpuList(v);
			 if (!cpus)
				 return Error::invalid("--pcpus: " + cpus.error().context());
			 p.options.pcpus = std::move(*cpus);
			 return {};
		 }},
		{"ple", "on|off",
		 "PAUSE interception (Pause-Loop Exiting) for every VM (default on;\n"
		 "off uses KVM_X86_DISABLE_EXITS_PAUSE)",
		 [](RunParse &p, const std::string &v) -> Status {
			 if (v != "on" && v != "off")
				 return Error::invalid("--ple: '" + v + "' is not on or off");
			 p.options.pauseExits = v == "on";
			 return {};
		 }},
		{"spin-threshold", "N",
		 "spin iterations before an enlightened guest reports a long spin\n"
		 "(CPUID 0x40000001 EBX; default 2048)",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto n = parseUnsigned(v, 1, 1u << 30);
			 if (!n)
				 return Error::invalid("--spin-threshold: " + n.error().context());
			 p.options.spinThreshold = static_cast<uint32_t>(*n);
			 return {};
		 }},
		{"guest-mode", "MODE",
		 "auto (default), ring0 or ring3: the CPL guests boot at (per VM:\n"
		 "guest-mode= in --vm). auto: ring 3 where KVM emulates ring-0 code\n"
		 "(PVM) and the guest declares ring 3 (the bundled ones do), else ring 0,\n"
		 "where hardware PLE sees spinning (Intel counts PAUSE at CPL 0 only)",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto mode = parseGuestModeChoice(v);
			 if (!mode)
				 return Error::invalid("--guest-mode: " + mode.error().context());
			 p.options.guestMode = *mode;
			 return {};
		 }},
	};
}

std::vector<RunFlag> outputFlags()
{
	return {
		{"serial", "MODE", "guest console: stdout (default), file=PATH, or off",
		 [](RunParse &p, const std::string &v) -> Status {
			 if (v == "stdout")
				 p.options.serial = SerialMode::Stdout;
			 else if (v == "off")
				 p.options.serial = SerialMode::Off;
			 else if (v.rfind("file=", 0) == 0 && v.size() > 5) {
				 p.options.serial = SerialMode::File;
				 p.options.serialPath = v.substr(5);
			 } else
				 return Error::invalid("--serial: '" + v + "' is not stdout, off or file=PATH");
			 return {};
		 }},
		{"console-limit", "SIZE",
		 "guest console output one VM may produce in a run (default 16M); past it\n"
		 "lines are counted and one line at the end says how much was suppressed",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto size = parseSize(v);
			 if (!size || *size == 0)
				 return Error::invalid("--console-limit: '" + v + "' is not a size above 0 (e.g. 64K, 16M)");
			 p.options.consoleLimitBytes = *size;
			 return {};
		 }},
		{"metrics", "PATH", "write per-VM and per-vCPU counters (exits, scheduler) as JSON",
		 [](RunParse &p, const std::string &v) { return setPath(p.options.metricsPath, "--metrics", v); }},
		{"results", "PATH", "write benchmark results (one object per VM) as JSON",
		 [](RunParse &p, const std::string &v) { return setPath(p.options.resultsPath, "--results", v); }},
		{"trace", "PATH", "write a timeline of scheduler events (JSON lines)",
		 [](RunParse &p, const std::string &v) { return setPath(p.options.tracePath, "--trace", v); }},
		{"stats", "", "print start-up time, each VM's guest mode and the VMM's own memory",
		 [](RunParse &p, const std::string &) -> Status {
			 p.options.stats = true;
			 return {};
		 }},
		{"timeout", "SECONDS", "stop every VM after this long, at most 7 days (exit status 124)",
		 [](RunParse &p, const std::string &v) -> Status {
			 // Seconds, optionally with a unit (e.g. 500ms); at most 7 days either way.
			 if (auto plain = parseUnsigned(v, 1, kMaxTimeoutSeconds)) {
				 p.options.timeoutMs = *plain * 1000;
				 return {};
			 }
			 auto ns = parseDurationNs(v);
			 if (!ns || *ns < 1000000 || *ns > kMaxTimeoutSeconds * 1'000'000'000)
				 return Error::invalid("--timeout: '" + v +
						       "' is not a positive number of seconds (at most 7 days)");
			 p.options.timeoutMs = *ns / 1000000;
			 return {};
		 }},
		{"log-level", "LEVEL", "trace, debug, info (default), warn, error, off",
		 [](RunParse &p, const std::string &v) -> Status {
			 for (const char *level : {"trace", "debug", "info", "warn", "error", "off"})
				 if (v == level) {
					 p.options.logLevel = v;
					 return {};
				 }
			 return Error::invalid("--log-level: '" + v + "' is not trace, debug, info, warn, error or off");
		 }},
		{"seccomp", "on|log|off",
		 "per-thread system-call allow-lists (default on): on traps a call outside\n"
		 "its thread's list and stops the run with one line; log only has the kernel\n"
		 "log it; off installs none",
		 [](RunParse &p, const std::string &v) -> Status {
			 auto mode = parseSeccompMode(v);
			 if (!mode)
				 return mode.error();
			 p.options.seccomp = *mode;
			 return {};
		 }},
		{"help", "", "show this help",
		 [](RunParse &p, const std::string &) -> Status {
			 p.options.help = true;
			 return {};
		 },
		 'h'},
	};
}

std::vector<RunFlag> allRunFlags(const std::string &policyHelp = {})
{
	std::vector<RunFlag> flags = vmFlags();
	for (auto section : {schedulingFlags(policyHelp), outputFlags()})
		flags.insert(flags.end(), section.begin(), section.end());
	return flags;
}

// The single-guest form and the --vm form, checked against each other, into options.vms.
Status assembleVms(RunParse &p)
{
	RunOptions &options = p.options;
	const bool singleForm = p.singleGiven || !p.single.kernelPath.empty();
	if (singleForm && !options.vms.empty())
		return Error::invalid("give either one GUEST (with -c/-m/--kernel/--) or --vm specs, not both");
	if (!singleForm && options.vms.empty())
		return Error::invalid("no guest given (e.g. spindle run hello -c 4; see spindle run --help)");
	if (!singleForm && (p.cpusGiven || p.memGiven || !p.guestArgs.empty()))
		return Error::invalid("-c/-m and -- guest arguments apply to the single-guest form; "
				      "with --vm use cpus=, mem= and args=");
	if (singleForm) {
		if (!p.single.guest.empty() && !p.single.kernelPath.empty())
			return Error::invalid("give either a bundled GUEST name or --kernel PATH, not both");
		p.single.args = std::move(p.guestArgs);
		options.vms.push_back(std::move(p.single));
	}
	return {};
}

// Default names vm0, vm1, ...; two VMs may not share one.
Status nameVms(RunOptions &options)
{
	if (options.vms.size() > static_cast<size_t>(sched::Scheduler::kMaxVms))
		return Error::invalid("at most " + std::to_string(sched::Scheduler::kMaxVms) + " VMs per run");
	for (size_t i = 0; i < options.vms.size(); ++i) {
		if (options.vms[i].name.empty())
			options.vms[i].name = "vm" + std::to_string(i);
		for (size_t j = 0; j < i; ++j)
			if (options.vms[j].name == options.vms[i].name)
				return Error::invalid("two VMs are named '" + options.vms[i].name + "'");
	}
	return {};
}

} // namespace

Result<RunOptions> parseRunOptions(const std::vector<std::string> &args, SchedFlagPredicate isSchedFlag)
{
	static const FlagTable<RunParse> table(allRunFlags());
	RunParse p;
	FlagTable<RunParse>::Hooks hooks;
	hooks.seeHelp = "spindle run --help";
	hooks.positional = [&p](const std::string &arg) -> Status {
		if (arg.empty())
			return Error::invalid("an empty guest name (see spindle guests)");
		if (p.singleGiven)
			return Error::invalid("more than one guest given ('" + p.single.guest + "' and '" + arg +
					      "'); use --vm for several VMs, and -- before guest arguments");
		p.single.guest = arg;
		p.singleGiven = true;
		return {};
	};
	hooks.rest = [&p](std::vector<std::string> rest) -> Status {
		p.guestArgs = std::move(rest);
		return {};
	};
	hooks.isPassThrough = [isSchedFlag](const std::string &name) { return isSchedFlag && isSchedFlag(name); };
	hooks.passThrough = [&p](const std::string &name, const std::string &value) -> Status {
		p.options.schedFlags.emplace_back(name, value);
		return {};
	};
	if (auto status = table.parse(args, p, hooks); !status)
		return status.error();
	if (p.options.help)
		return p.options;
	if (auto status = assembleVms(p); !status)
		return status.error();
	if (auto status = nameVms(p.options); !status)
		return status.error();
	return p.options;
}

std::string runUsage(const std::string &policyHelp, const std::string &boundsHelp)
{
	return R"(Usage: spindle run [OPTIONS] GUEST [-- GUEST-ARGS...]
       spindle run [OPTIONS] --kernel PATH [-- GUEST-ARGS...]
       spindle run [OPTIONS] --vm SPEC [--vm SPEC...]

Boots guests on /dev/kvm, one thread per vCPU, and passes the guest's exit code on.
GUEST is a bundled guest (see `spindle guests`); GUEST-ARGS reach the guest in its boot info.

VM options (-c, -m, --kernel and GUEST are the single-guest form; --vm adds VMs):
)" + FlagTable<RunParse>(vmFlags()).help() +
	       "\nScheduling:\n" + FlagTable<RunParse>(schedulingFlags(policyHelp)).help() +
	       "\nScheduler bounds (each has a default; sched/README.md explains them):\n" + boundsHelp +
	       "\nOutput:\n" + FlagTable<RunParse>(outputFlags()).help() + R"(
Every flag, file and path is checked before any VM or the scheduler exists; bad input gets one
line and exit status 2. --metrics and --results are written after every run that got that far,
failed ones included (with "status" and "failure").

Exit status: the guest's exit code (0-255) with one VM; with several, 0 if every guest
exited 0, else the first non-zero code. 1: the VM failed (guest crashed, KVM error, results
failed their checks); 2: bad command line or input; 124: --timeout; 130: interrupted
(SIGINT, SIGTERM or SIGHUP: every thread restored, the output files written).
)";
}

} // namespace spindle

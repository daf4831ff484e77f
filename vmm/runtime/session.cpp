#include "vmm/runtime/session.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/json.h"
#include "common/say_once.h"
#include "guest-kernels/bundled.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/backend.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/probe/host_probe.h"
#include "vmm/runtime/console_writer.h"
#include "vmm/runtime/guest_mode.h"
#include "vmm/runtime/scheduler_bridge.h"

namespace spindle {

namespace {

// Taken during static initialisation, as close to process start as user code gets.
const uint64_t gProcessStartNs = monotonicNs();

// Anything above this is not a guest we bundle or expect; refuse rather than read gigabytes.
constexpr uint64_t kMaxKernelBytes = 256ull << 20;

// What a --serial file may still take after the VMs stopped.
constexpr uint64_t kConsoleGraceNs = 500'000'000;

Result<std::vector<uint8_t>> readKernel(const std::string &path)
{
	struct stat info;
	if (stat(path.c_str(), &info) < 0)
		return Error::fromErrno("kernel " + path);
	if (!S_ISREG(info.st_mode))
		return Error::invalid("kernel " + path + " is not a regular file");
	if (static_cast<uint64_t>(info.st_size) > kMaxKernelBytes)
		return Error::invalid("kernel " + path + " is larger than 256 MiB");
	std::ifstream file(path, std::ios::binary);
	if (!file)
		return Error::fromErrno("kernel " + path);
	std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
	if (!file.read(reinterpret_cast<char *>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
		return Error(EIO, "reading kernel " + path);
	return bytes;
}

// A file or a path given by the user is bad input, whatever errno says.
Error asInput(const Error &error)
{
	return Error::invalid(error.message());
}

// For a backend Spindle does not recognise: does ring-0 guest code run at emulator speed? Measured
// once per process (about 20 ms), only when asked.
bool ringZeroEmulated()
{
	static const bool emulated = [] {
		auto kvm = KvmSystem::open();
		if (!kvm)
			return false;
		auto speed = measureGuestSpeed(*kvm, GuestMode::Ring0);
		return speed && speed->instructionsPerUs() < kNativeInstructionsPerUs;
	}();
	return emulated;
}

Result<VmConfig> resolveVm(const VmSpec &spec, const SessionConfig &options, const GuestEnlightenment &enlightenment)
{
	VmConfig config;
	config.hints = enlightenment.hints;
	config.cpuidFeatures = cpuidFeatures(enlightenment);
	config.name = spec.name;
	config.cpus = spec.cpus;
	config.memBytes = spec.memBytes;
	config.spinThreshold = options.spinThreshold;
	config.pauseExits = options.pauseExits;
	config.seccomp = options.seccomp;
	for (const std::string &arg : spec.args)
		config.args += (config.args.empty() ? "" : " ") + arg;
	if (!spec.kernelPath.empty()) {
		auto bytes = readKernel(spec.kernelPath);
		if (!bytes)
			return asInput(bytes.error());
		config.elf = std::move(*bytes);
		config.guest = spec.kernelPath;
	} else {
		const BundledGuest *guest = findBundledGuest(spec.guest);
		if (!guest) {
			std::string names;
			for (const BundledGuest &g : bundledGuests())
				names += (names.empty() ? "" : ", ") + std::string(g.name);
			return Error::invalid("unknown guest '" + spec.guest + "' (bundled: " + names +
					      "; or use --kernel PATH)");
		}
		config.elf.assign(guest->elf.begin(), guest->elf.end());
		config.guest = spec.guest;
	}
	// The image is input: a malformed one is refused here, before anything is created.
	const MemoryLayout layout{config.memBytes, config.cpus};
	if (auto status = validateLayout(layout); !status)
		return Error::invalid(status.error().message());
	auto image = parseElf(config.elf, layout.kernelWindowStart(), layout.kernelWindowEnd());
	if (!image)
		return image.error().wrap("guest " + config.guest);
	auto mode = chooseGuestMode(spec.guestMode.value_or(options.guestMode), hostKvmBackend(), image->guestModes,
				    hostKvmBackend() == KvmBackend::Unknown && ringZeroEmulated());
	if (!mode)
		return mode.error().wrap("guest " + config.guest);
	if (!mode->warning.empty() && firstTimeInProcess("guest-mode:" + mode->warning))
		spdlog::warn("{}: {}", config.name, mode->warning);
	config.mode = mode->mode;
	config.modeReason = mode->reason;
	return config;
}

// Control characters from a hostile guest must not reach the user's terminal, and neither may
// bytes above 0x7f: 0x80-0x9f are C1 controls to many terminals (0x9b starts an escape
// sequence). The console is ASCII.
std::string printable(std::string_view line)
{
	std::string out;
	out.reserve(line.size());
	for (char c : line) {
		const auto byte = static_cast<unsigned char>(c);
		out += (byte >= 0x20 && byte < 0x7f) || c == '\t' ? c : '?';
	}
	return out;
}

uint64_t residentBytes(const GuestMemory &memory)
{
	const size_t pages = memory.size() / 4096;
	std::vector<unsigned char> vec(pages);
	if (mincore(memory.hostBase(), memory.size(), vec.data()) < 0)
		return 0;
	uint64_t resident = 0;
	for (unsigned char v : vec)
		resident += (v & 1) ? 4096 : 0;
	return resident;
}

uint64_t processRssBytes()
{
	std::ifstream status("/proc/self/status");
	std::string line;
	while (std::getline(status, line))
		if (line.rfind("VmRSS:", 0) == 0)
			return std::stoull(line.substr(6)) * 1024;
	return 0;
}

std::string stopOutcome(const VirtualMachine &vm)
{
	switch (vm.stopReason()) {
	case StopReason::GuestExit: {
		auto code = vm.guestExitCode();
		return code && *code == 0 ? std::string() : "guest exited with code " + std::to_string(code.value_or(-1));
	}
	case StopReason::Fatal:
	case StopReason::AllHalted: return vm.stopMessage();
	case StopReason::Requested: return vm.stopMessage().empty() ? "stopped" : vm.stopMessage();
	case StopReason::None: break;
	}
	return "still running";
}

// One run of a session, step by step; each step either succeeds or ends the session with an
// error (its one line).
class SessionRun
{
public:
	SessionRun(const SessionConfig &config, const SessionIo &io) : config_(config), io_(io), startNs_(monotonicNs()) {}
	~SessionRun()
	{
		// The VMs may still print while they are torn down, and the console writes to the file.
		vms_.clear();
		if (fileConsole_)
			fileConsole_->close(kConsoleGraceNs);
		fileConsole_.reset();
		if (serialFile_)
			fclose(serialFile_);
	}

	Result<SessionReport> execute();

private:
	Status resolve();
	Status openHost();
	Status createVms();
	Status startVms();
	void waitForVms();
	void stopAll(const std::string &why);
	SessionReport report();

	const SessionConfig &config_;
	SessionIo io_;
	uint64_t startNs_;

	StartGate startGate_; // before vms_: their threads wait on it
	std::vector<VmConfig> configs_;
	std::optional<KvmSystem> kvm_;
	std::unique_ptr<SessionScheduler> scheduler_;
	FILE *serialFile_ = nullptr;
	std::unique_ptr<ConsoleWriter> fileConsole_;
	ConsoleWriter *console_ = nullptr;
	FinishSignal finished_;
	struct ConsoleBudget {
		std::atomic<uint64_t> bytes{0};
		std::atomic<uint64_t> suppressed{0};
	};
	std::deque<ConsoleBudget> consoleBudgets_; // one per VM; a deque: atomics do not move
	std::vector<std::unique_ptr<VirtualMachine>> vms_;
	bool timedOut_ = false;
	int signal_ = 0;
};

// Everything that can be wrong with the configuration, before touching KVM.
Status SessionRun::resolve()
{
	auto enlightenment = guestEnlightenment(config_);
	if (!enlightenment)
		return enlightenment.error();
	uint64_t totalMem = 0;
	for (const VmSpec &spec : config_.vms) {
		auto config = resolveVm(spec, config_, *enlightenment);
		if (!config)
			return config.error().wrap(spec.name);
		totalMem += config->memBytes;
		configs_.push_back(std::move(*config));
	}
	const uint64_t hostMem = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	if (totalMem > hostMem)
		return Error::invalid("guest memory (" + std::to_string(totalMem >> 20) + " MiB in all) is more than this host has (" +
				      std::to_string(hostMem >> 20) + " MiB)");
	return checkSchedulerOptions(config_);
}

// KVM and the limits it sets, the serial file, then the scheduler: its notes (PLE detector off)
// come only once the configuration is known to be good.
Status SessionRun::openHost()
{
	auto kvm = KvmSystem::open();
	if (!kvm)
		return kvm.error().wrap("cannot use KVM (try `spindle check`)");
	kvm_.emplace(std::move(*kvm));
	for (const VmConfig &config : configs_)
		if (config.cpus > static_cast<unsigned>(kvm_->maxVcpus()))
			return Error::invalid(config.name + ": " + std::to_string(config.cpus) +
					      " vCPUs requested; this KVM allows at most " + std::to_string(kvm_->maxVcpus()));
	if (config_.serial == SerialMode::File) {
		serialFile_ = fopen(config_.serialPath.c_str(), "w");
		if (!serialFile_)
			return asInput(Error::fromErrno("--serial file " + config_.serialPath));
		fileConsole_ = std::make_unique<ConsoleWriter>(fileno(serialFile_), config_.seccomp);
		console_ = fileConsole_.get();
	} else if (config_.serial == SerialMode::Stdout) {
		console_ = io_.console;
	}
	if (config_.seccomp != SeccompMode::Off)
		if (auto status = seccompAvailable(); !status)
			return status.error().wrap("seccomp filters cannot be installed here (use --seccomp off)");
	SchedulerHostFacts facts;
	if (hostKvmBackend() == KvmBackend::Pvm)
		facts.pauseExitsUnavailable = "this KVM (PVM) never exits on PAUSE";
	auto scheduler = makeSessionScheduler(config_, facts);
	if (!scheduler)
		return scheduler.error();
	scheduler_ = std::move(*scheduler);
	return {};
}

Status SessionRun::createVms()
{
	const bool prefix = configs_.size() > 1;
	consoleBudgets_.resize(configs_.size());
	for (size_t i = 0; i < configs_.size(); ++i) {
		const std::string name = configs_[i].name;
		ConsoleBudget *budget = &consoleBudgets_[i];
		Serial::LineSink sink = [this, name, prefix, budget](std::string_view line) {
			if (!console_)
				return;
			// A guest that prints for ever must not fill the user's disk or terminal: past its
			// budget a VM's lines are counted, and one line at the end says how many.
			const uint64_t used = budget->bytes.fetch_add(line.size() + 1, std::memory_order_relaxed);
			if (used + line.size() + 1 > config_.consoleLimitBytes) {
				budget->suppressed.fetch_add(line.size() + 1, std::memory_order_relaxed);
				return;
			}
			console_->write((prefix ? "[" + name + "] " : std::string()) + printable(line) + "\n");
		};
		auto vm = VirtualMachine::create(*kvm_, std::move(configs_[i]), static_cast<int>(i), sink, finished_);
		if (!vm)
			return vm.error().wrap(name);
		(*vm)->setObserver(scheduler_.get());
		(*vm)->setStartGate(&startGate_);
		if (auto status = scheduler_->addVm(**vm); !status)
			return status.error().wrap(name);
		vms_.push_back(std::move(*vm));
	}
	return {};
}

Status SessionRun::startVms()
{
	if (auto status = scheduler_->start(); !status)
		return status.error().wrap("scheduler");
	// Said when the run starts, so a long run shows at once what it runs under.
	if (!io_.quiet)
		spdlog::info("{}", scheduler_->summary());
	// The last vCPU thread to be set up opens the gate; if a VM fails to start, it is opened
	// here, so the threads that did start see the stop and end.
	unsigned vcpus = 0;
	for (auto &vm : vms_)
		vcpus += vm->config().cpus;
	startGate_.expect(vcpus);
	for (auto &vm : vms_)
		if (auto status = vm->start(); !status) {
			startGate_.open();
			return status.error().wrap(vm->config().name);
		}
	// Every thread of the run exists now; the main thread's own calls are few from here on.
	if (io_.filterMainThread) {
		if (auto status = installSeccompFilter(ThreadRole::Main, config_.seccomp); !status)
			return status.error();
		seccompSelfTest(ThreadRole::Main, config_.seccomp);
	}
	return {};
}

void SessionRun::stopAll(const std::string &why)
{
	for (auto &vm : vms_)
		vm->requestStop(StopReason::Requested, why);
	// Restore first, then join: a kicked vCPU thread still pinned to a busy pool CPU (or boosted)
	// waited there 100 ms and more to run its way out; restored, it may leave on any CPU.
	if (scheduler_)
		scheduler_->stop();
	for (auto &vm : vms_)
		vm->join();
}

// Until every VM is done, the timeout passes or the stop token says stop; then stops and joins
// them all.
void SessionRun::waitForVms()
{
	uint64_t seen = 0;
	std::vector<bool> reported(vms_.size(), false);
	for (;;) {
		bool allDone = true;
		for (size_t i = 0; i < vms_.size(); ++i) {
			const StopReason reason = vms_[i]->stopReason();
			if (reason != StopReason::None && !reported[i]) {
				reported[i] = true;
				scheduler_->vmStopped(vms_[i]->id());
				// One VM that fails takes the run down: its numbers would be meaningless.
				if (reason == StopReason::Fatal || reason == StopReason::AllHalted)
					for (auto &other : vms_)
						other->requestStop(StopReason::Requested, "another VM failed");
			}
			allDone = allDone && reason != StopReason::None;
		}
		if (allDone)
			break;
		if ((signal_ = io_.stop.signal()) != 0)
			break;
		if (config_.timeoutMs && monotonicNs() - startNs_ >= config_.timeoutMs * 1000000ull) {
			timedOut_ = true;
			break;
		}
		seen = finished_.waitFor(seen, std::chrono::milliseconds(20));
	}
	stopAll(timedOut_ ? "timeout" : "interrupted");
	for (size_t i = 0; i < vms_.size() && console_; ++i)
		if (const uint64_t suppressed = consoleBudgets_[i].suppressed.load())
			console_->write("[" + vms_[i]->config().name + "] (suppressed " + std::to_string(suppressed) +
					" bytes of console output past --console-limit, " +
					std::to_string(config_.consoleLimitBytes) + " bytes per VM)\n");
	// A signal that came while the VMs were finishing on their own still interrupts: the caller
	// asked to stop, and a matrix must not run on past it.
	if (!signal_ && !timedOut_)
		signal_ = io_.stop.signal();
}

SessionReport SessionRun::report()
{
	SessionReport report;
	report.timedOut = timedOut_;
	report.signal = signal_;
	for (const auto &vm : vms_) {
		VmReport r;
		r.name = vm->config().name;
		r.cpus = vm->config().cpus;
		r.mode = vm->config().mode;
		r.modeReason = vm->config().modeReason;
		r.stopReason = vm->stopReason();
		r.stopMessage = vm->stopMessage();
		r.exitCode = vm->guestExitCode();
		r.results = vm->results();
		r.pvMalformed = vm->pvMalformed();
		for (const std::string &text : r.results.guestErrors)
			spdlog::error("{}: guest: {}", r.name, text);
		if (r.stopReason == StopReason::Fatal || r.stopReason == StopReason::AllHalted)
			spdlog::error("{}: {}", r.name, r.stopMessage);
		if (auto check = checkGuestResults(r.results); !check && r.stopReason == StopReason::GuestExit) {
			spdlog::error("{}: results fail their checks: {}", r.name, check.error().message());
			r.resultsOk = false;
			r.failure = check.error().message();
		}
		if (r.failure.empty())
			r.failure = stopOutcome(*vm);
		if (r.failure.empty() && !r.results.guestErrors.empty())
			r.failure = r.results.guestErrors.front();
		const volatile spindle_hint_slot *hints = vm->hintSlots();
		for (unsigned v = 0; v < r.cpus; ++v) {
			VcpuReport vcpu{vm->counters(v).snapshot(), std::nullopt, vm->parkingCounters(v)};
			if (hints)
				vcpu.hint = HintAtExit{hints[v].seq, hints[v].locks_held, hints[v].waiting_on};
			r.vcpus.push_back(vcpu);
		}
		if (report.failure.empty() && (r.stopReason == StopReason::Fatal || r.stopReason == StopReason::AllHalted))
			report.failure = r.name + ": " + r.stopMessage;
		if (vm->firstReportNs() && (!report.stats.startupNs || vm->firstReportNs() - processStartNs() < report.stats.startupNs))
			report.stats.startupNs = vm->firstReportNs() - processStartNs();
		report.stats.guestResidentBytes += residentBytes(vm->memory());
		report.vms.push_back(std::move(r));
	}
	report.stats.rssBytes = processRssBytes();
	if (scheduler_)
		report.scheduler = scheduler_->metrics();
	report.wallSeconds = static_cast<double>(monotonicNs() - startNs_) / 1e9;
	return report;
}

Result<SessionReport> SessionRun::execute()
{
	if (auto status = resolve(); !status)
		return status.error();
	if (auto status = openHost(); !status)
		return status.error();
	if (auto status = createVms(); !status)
		return status.error();
	// A signal during set-up stops the run before any guest starts.
	if ((signal_ = io_.stop.signal()) != 0) {
		stopAll("interrupted");
		return report();
	}
	if (auto status = startVms(); !status) {
		stopAll(status.error().message());
		return status.error();
	}
	waitForVms();
	return report();
}

} // namespace

uint64_t processStartNs()
{
	return gProcessStartNs;
}

Result<SessionReport> runSession(const SessionConfig &config, const SessionIo &io)
{
	SessionRun run(config, io);
	return run.execute();
}

} // namespace spindle

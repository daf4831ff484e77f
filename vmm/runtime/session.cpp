#include "vmm/runtime/session.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include "vmm/runtime/console_writer.h"
#include "vmm/runtime/guest_mode.h"

namespace spindle {

namespace {

std::atomic<int> gStopSignal{0};

// Taken during static initialisation, as close to process start as user code gets.
const uint64_t gProcessStartNs = monotonicNs();

// Anything above this is not a guest we bundle or expect; refuse rather than read gigabytes.
constexpr uint64_t kMaxKernelBytes = 256ull << 20;

// What the console may still take after the VMs stopped: a reader that is merely slow gets its
// output, one that never reads does not hold the run (or --timeout) hostage.
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

Result<VmConfig> resolveVm(const VmSpec &spec, const RunOptions &options, const GuestEnlightenment &enlightenment)
{
	VmConfig config;
	config.hints = enlightenment.hints;
	config.cpuidFeatures = cpuidFeatures(enlightenment);
	config.name = spec.name;
	config.cpus = spec.cpus;
	config.memBytes = spec.memBytes;
	config.spinThreshold = options.spinThreshold;
	config.pauseExits = options.pauseExits;
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
	auto mode = chooseGuestMode(spec.guestMode.value_or(options.guestMode), hostKvmBackend(), image->guestModes);
	if (!mode)
		return mode.error().wrap("guest " + config.guest);
	if (!mode->warning.empty() && firstTimeInProcess("guest-mode:" + mode->warning))
		spdlog::warn("{}: {}", config.name, mode->warning);
	config.mode = mode->mode;
	config.modeReason = mode->reason;
	return config;
}

// Control characters from a hostile guest must not reach the user's terminal.
std::string printable(std::string_view line)
{
	std::string out;
	out.reserve(line.size());
	for (char c : line)
		out += (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) || c == '\t' ? c : '?';
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

// The output files are written at the end; find out now that one cannot be, without creating
// or truncating anything.
Status checkWritable(const std::string &flag, const std::string &path)
{
	namespace fs = std::filesystem;
	std::error_code error;
	const fs::path file(path);
	if (fs::exists(file, error)) {
		if (fs::is_directory(file, error))
			return Error::invalid(flag + " " + path + " is a directory");
		if (access(path.c_str(), W_OK) != 0)
			return Error::invalid(Error::fromErrno(flag + " " + path).message());
		return {};
	}
	const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
	if (access(dir.c_str(), W_OK) != 0)
		return Error::invalid(Error::fromErrno(flag + " " + path).message());
	return {};
}

Status writeFile(const std::string &path, const std::string &text)
{
	FILE *file = fopen(path.c_str(), "w");
	if (!file)
		return Error::fromErrno("writing " + path);
	bool ok = fwrite(text.data(), 1, text.size(), file) == text.size();
	ok = (fclose(file) == 0) && ok;
	if (!ok)
		return Error::fromErrno("writing " + path);
	return {};
}

const char *stopReasonName(StopReason reason)
{
	switch (reason) {
	case StopReason::None: return "running";
	case StopReason::GuestExit: return "guest_exit";
	case StopReason::AllHalted: return "all_halted";
	case StopReason::Fatal: return "fatal";
	case StopReason::Requested: return "stopped";
	}
	return "?";
}

std::string statusJson(int status, const std::string &failure)
{
	return "\"status\": " + std::to_string(status) +
	       ", \"failure\": " + (failure.empty() ? std::string("null") : jsonString(failure));
}

std::string vmMetricsJson(const VirtualMachine &vm)
{
	std::string json = "{\"name\": " + jsonString(vm.config().name) + ", \"cpus\": " + std::to_string(vm.config().cpus);
	json += ", \"guest_mode\": \"" + std::string(guestModeName(vm.config().mode)) + "\"";
	json += ", \"guest_mode_reason\": " + jsonString(vm.config().modeReason);
	json += ", \"stop_reason\": \"" + std::string(stopReasonName(vm.stopReason())) + "\"";
	auto code = vm.guestExitCode();
	json += ", \"exit_code\": " + (code ? std::to_string(*code) : std::string("null"));
	json += ", \"pv_malformed\": " + std::to_string(vm.pvMalformed());
	json += ", \"long_spins\": " + std::to_string(vm.results().longSpins);
	json += ", \"vcpus\": [";
	const volatile spindle_hint_slot *hints = vm.hintSlots();
	for (unsigned v = 0; v < vm.config().cpus; ++v) {
		json += (v ? ", " : "") + std::string("{\"vcpu\": ") + std::to_string(v) + ", \"exits\": " + vm.counters(v).toJson();
		// The hint slot as the guest left it: a consistent guest holds no lock at the end.
		if (hints) {
			const uint32_t waitingOn = hints[v].waiting_on;
			json += ", \"hint_at_exit\": {\"seq\": " + std::to_string(hints[v].seq) +
				", \"locks_held\": " + std::to_string(hints[v].locks_held) + ", \"waiting_on\": " +
				(waitingOn == SPINDLE_VCPU_NONE ? std::string("null") : std::to_string(waitingOn)) + "}";
		}
		json += "}";
	}
	return json + "]}";
}

// One run of `spindle run`, step by step; each step either succeeds or ends the run with one
// line and an exit status, and from the moment the output paths are known to be writable, every
// ending writes --metrics and --results (with the failure reason when there is one).
class SessionRun
{
public:
	SessionRun(const RunOptions &options, SessionReport *report, bool quiet)
		: options_(options), report_(report), quiet_(quiet), startNs_(monotonicNs())
	{
	}
	~SessionRun()
	{
		// The VMs may still print while they are torn down, and the console writes to the file.
		vms_.clear();
		console_.reset();
		if (serialFile_)
			fclose(serialFile_);
	}

	int execute();

private:
	Status checkOutputs();
	Status resolve();
	Status openHost();
	Status createVms();
	Status startVms();
	void waitForVms();
	int reportVms();
	void writeOutputs(int status, const std::string &failure);
	void printStats();
	int fail(const Error &error, const std::string &prefix = {});

	const RunOptions &options_;
	SessionReport *report_;
	bool quiet_;
	uint64_t startNs_;
	bool outputsChecked_ = false;

	std::vector<VmConfig> configs_;
	std::optional<KvmSystem> kvm_;
	std::unique_ptr<SessionScheduler> scheduler_;
	FILE *serialFile_ = nullptr;
	std::unique_ptr<ConsoleWriter> console_;
	FinishSignal finished_;
	std::vector<std::unique_ptr<VirtualMachine>> vms_;
	bool timedOut_ = false;
	int signal_ = 0;
	std::string resultsJson_;
};

int SessionRun::fail(const Error &error, const std::string &prefix)
{
	const int status = error.isInput() ? kExitUsage : kExitVmFailed;
	const std::string message = prefix.empty() ? error.message() : prefix + ": " + error.message();
	spdlog::error("{}", message);
	if (console_)
		console_->close(kConsoleGraceNs);
	if (outputsChecked_)
		writeOutputs(status, message);
	if (report_)
		report_->status = status;
	return status;
}

Status SessionRun::checkOutputs()
{
	if (!options_.metricsPath.empty())
		if (auto status = checkWritable("--metrics", options_.metricsPath); !status)
			return status;
	if (!options_.resultsPath.empty())
		if (auto status = checkWritable("--results", options_.resultsPath); !status)
			return status;
	if (options_.serial == SerialMode::File)
		if (auto status = checkWritable("--serial file", options_.serialPath); !status)
			return status;
	outputsChecked_ = true;
	return {};
}

// Everything that can be wrong with the command line, before touching KVM.
Status SessionRun::resolve()
{
	auto enlightenment = guestEnlightenment(options_);
	if (!enlightenment)
		return enlightenment.error();
	uint64_t totalMem = 0;
	for (const VmSpec &spec : options_.vms) {
		auto config = resolveVm(spec, options_, *enlightenment);
		if (!config)
			return config.error().wrap(spec.name);
		totalMem += config->memBytes;
		configs_.push_back(std::move(*config));
	}
	const uint64_t hostMem = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	if (totalMem > hostMem)
		return Error::invalid("guest memory (" + std::to_string(totalMem >> 20) + " MiB in all) is more than this host has (" +
				      std::to_string(hostMem >> 20) + " MiB)");
	return checkSchedulerOptions(options_);
}

// KVM and the limits it sets, then the scheduler: its notes (PLE detector off) come only once
// the command line is known to be good.
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
	if (options_.serial == SerialMode::File) {
		serialFile_ = fopen(options_.serialPath.c_str(), "w");
		if (!serialFile_)
			return asInput(Error::fromErrno("--serial file " + options_.serialPath));
	}
	const KvmBackend backend = hostKvmBackend();
	SchedulerHostFacts facts;
	if (backend == KvmBackend::Pvm)
		facts.pauseExitsUnavailable = "this KVM (PVM) never exits on PAUSE";
	auto scheduler = makeSessionScheduler(options_, facts);
	if (!scheduler)
		return scheduler.error();
	scheduler_ = std::move(*scheduler);
	return {};
}

Status SessionRun::createVms()
{
	console_ = std::make_unique<ConsoleWriter>(serialFile_ ? fileno(serialFile_) : STDOUT_FILENO);
	const bool prefix = configs_.size() > 1;
	for (size_t i = 0; i < configs_.size(); ++i) {
		const std::string name = configs_[i].name;
		Serial::LineSink sink = [this, name, prefix](std::string_view line) {
			if (options_.serial == SerialMode::Off)
				return;
			console_->write((prefix ? "[" + name + "] " : std::string()) + printable(line) + "\n");
		};
		auto vm = VirtualMachine::create(*kvm_, std::move(configs_[i]), static_cast<int>(i), sink, finished_);
		if (!vm)
			return vm.error().wrap(name);
		(*vm)->setObserver(scheduler_.get());
		if (auto status = scheduler_->addVm(**vm); !status)
			return status.error().wrap(name);
		vms_.push_back(std::move(*vm));
	}
	return {};
}

Status SessionRun::startVms()
{
	installStopSignalHandlers();
	if (auto status = scheduler_->start(); !status)
		return status.error().wrap("scheduler");
	// Said when the run starts, so a long run shows at once what it runs under.
	if (!quiet_)
		spdlog::info("{}", scheduler_->summary());
	for (auto &vm : vms_)
		if (auto status = vm->start(); !status)
			return status.error().wrap(vm->config().name);
	return {};
}

// Until every VM is done, the timeout passes or a signal arrives; then stops and joins them all.
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
		if ((signal_ = gStopSignal.load()) != 0)
			break;
		if (options_.timeoutMs && monotonicNs() - startNs_ >= options_.timeoutMs * 1000000ull) {
			timedOut_ = true;
			break;
		}
		seen = finished_.waitFor(seen, std::chrono::milliseconds(20));
	}
	for (auto &vm : vms_)
		vm->requestStop(StopReason::Requested, timedOut_ ? "timeout" : "interrupted");
	for (auto &vm : vms_)
		vm->join();
	scheduler_->stop();
	// A signal that came while the VMs were finishing on their own still interrupts: the caller
	// asked to stop, and a matrix must not run on past it.
	if (!signal_ && !timedOut_)
		signal_ = gStopSignal.load();
}

// Judges each VM, prints its table, fills the report; returns the exit status.
int SessionRun::reportVms()
{
	int status = 0;
	resultsJson_.clear();
	for (size_t i = 0; i < vms_.size(); ++i) {
		const VirtualMachine &vm = *vms_[i];
		GuestResults results = vm.results();
		for (const std::string &text : results.guestErrors)
			spdlog::error("{}: guest: {}", vm.config().name, text);
		int vmStatus = 0;
		switch (vm.stopReason()) {
		case StopReason::GuestExit:
			vmStatus = vm.guestExitCode().value_or(kExitVmFailed);
			break;
		case StopReason::Fatal:
		case StopReason::AllHalted:
			spdlog::error("{}: {}", vm.config().name, vm.stopMessage());
			vmStatus = kExitVmFailed;
			break;
		case StopReason::Requested:
		case StopReason::None:
			vmStatus = timedOut_ ? kExitTimeout : kExitInterrupted;
			break;
		}
		std::string failure;
		if (auto check = checkGuestResults(results); !check && vm.stopReason() == StopReason::GuestExit) {
			spdlog::error("{}: results fail their checks: {}", vm.config().name, check.error().message());
			failure = check.error().message();
			if (vmStatus == 0)
				vmStatus = kExitVmFailed;
		}
		if (failure.empty() && vmStatus != 0)
			failure = vm.stopMessage().empty() ? "exit status " + std::to_string(vmStatus) : vm.stopMessage();
		if (failure.empty() && !results.guestErrors.empty())
			failure = results.guestErrors.front();
		if (results.vm && !quiet_)
			console_->write(guestResultsTable(vm.config().name, results));
		if (report_)
			report_->vms.push_back({vm.config().name, vm.config().cpus, results, stopReasonName(vm.stopReason()),
						vm.guestExitCode(), failure});
		resultsJson_ += (i ? ", " : "") + guestResultsJson(vm.config().name, results);
		if (status == 0)
			status = vmStatus;
	}
	if (timedOut_)
		spdlog::error("timeout: stopped after {} s", static_cast<double>(options_.timeoutMs) / 1000.0);
	if (signal_)
		spdlog::warn("interrupted by signal {}: every VM stopped, results so far written", signal_);
	if (timedOut_)
		status = kExitTimeout;
	else if (signal_)
		status = kExitInterrupted;
	return status;
}

void SessionRun::writeOutputs(int status, const std::string &failure)
{
	if (!options_.metricsPath.empty()) {
		std::string json = "{" + statusJson(status, failure) + ", \"vms\": [";
		for (size_t i = 0; i < vms_.size(); ++i)
			json += (i ? ", " : "") + vmMetricsJson(*vms_[i]);
		json += "]";
		if (scheduler_)
			json += ", \"scheduler\": " + scheduler_->metricsJson();
		if (auto written = writeFile(options_.metricsPath, json + "}\n"); !written)
			spdlog::error("{}", written.error().message());
	}
	if (!options_.resultsPath.empty()) {
		const std::string json = "{" + statusJson(status, failure) + ", \"vms\": [" + resultsJson_ + "]}\n";
		if (auto written = writeFile(options_.resultsPath, json); !written)
			spdlog::error("{}", written.error().message());
	}
}

void SessionRun::printStats()
{
	uint64_t first = 0, guestResident = 0;
	for (auto &vm : vms_) {
		if (vm->firstReportNs() && (!first || vm->firstReportNs() < first))
			first = vm->firstReportNs();
		guestResident += residentBytes(vm->memory());
	}
	for (auto &vm : vms_)
		fprintf(stderr, "stats: %s guest mode %s (%s)\n", vm->config().name.c_str(),
			std::string(guestModeName(vm->config().mode)).c_str(), vm->config().modeReason.c_str());
	const uint64_t rss = processRssBytes();
	fprintf(stderr, "stats: start-up %.3f ms (process start to the guest's first report)\n",
		first ? static_cast<double>(first - gProcessStartNs) / 1e6 : -1.0);
	fprintf(stderr, "stats: VMM resident memory beyond guest RAM %.2f MiB (RSS %.2f MiB, guest-resident %.2f MiB)\n",
		static_cast<double>(rss - std::min(rss, guestResident)) / 1048576.0, static_cast<double>(rss) / 1048576.0,
		static_cast<double>(guestResident) / 1048576.0);
}

int SessionRun::execute()
{
	gStopSignal.store(0);
	if (auto status = checkOutputs(); !status)
		return fail(status.error());
	if (auto status = resolve(); !status)
		return fail(status.error());
	if (auto status = openHost(); !status)
		return fail(status.error());
	if (auto status = createVms(); !status)
		return fail(status.error());
	if (auto status = startVms(); !status) {
		for (auto &vm : vms_)
			vm->requestStop(StopReason::Fatal, status.error().message());
		for (auto &vm : vms_)
			vm->join();
		scheduler_->stop();
		return fail(status.error());
	}
	waitForVms();
	int status = reportVms();
	// Whatever the console could not take by now is dropped, and said so.
	if (const uint64_t dropped = console_->close(kConsoleGraceNs))
		spdlog::warn("{} bytes of guest output could not be written (nobody read it in time)", dropped);

	if (report_) {
		report_->schedulerMetricsJson = scheduler_->metricsJson();
		report_->wallSeconds = static_cast<double>(monotonicNs() - startNs_) / 1e9;
	}
	std::string failure;
	for (auto &vm : vms_)
		if (failure.empty() && (vm->stopReason() == StopReason::Fatal || vm->stopReason() == StopReason::AllHalted))
			failure = vm->config().name + ": " + vm->stopMessage();
	if (failure.empty() && timedOut_)
		failure = "timeout";
	if (failure.empty() && signal_)
		failure = "interrupted by signal " + std::to_string(signal_);
	writeOutputs(status, failure);
	if (options_.stats)
		printStats();
	if (report_)
		report_->status = status;
	return status;
}

} // namespace

bool stopSignalPending()
{
	return gStopSignal.load() != 0;
}

void installStopSignalHandlers()
{
	struct sigaction action {};
	action.sa_handler = [](int signal) { gStopSignal.store(signal); };
	sigemptyset(&action.sa_mask);
	sigaction(SIGINT, &action, nullptr);
	sigaction(SIGTERM, &action, nullptr);
}

int runSession(const RunOptions &options, SessionReport *report, bool quiet)
{
	SessionRun run(options, report, quiet);
	return run.execute();
}

} // namespace spindle

#include "vmm/runtime/session.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/json.h"
#include "guest-kernels/bundled.h"
#include "vmm/kvm/kvm_system.h"

namespace spindle {

namespace {

std::atomic<int> gStopSignal{0};

// Taken during static initialisation, as close to process start as user code gets.
const uint64_t gProcessStartNs = monotonicNs();

// Anything above this is not a guest we bundle or expect; refuse rather than read gigabytes.
constexpr uint64_t kMaxKernelBytes = 256ull << 20;

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

Result<VmConfig> resolveVm(const VmSpec &spec, const RunOptions &options)
{
	VmConfig config;
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
			return bytes.error();
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

std::string metricsJson(const std::vector<std::unique_ptr<VirtualMachine>> &vms, const SessionScheduler *scheduler)
{
	std::string json = "{\"vms\": [";
	for (size_t i = 0; i < vms.size(); ++i) {
		const VirtualMachine &vm = *vms[i];
		json += i ? ", " : "";
		json += "{\"name\": " + jsonString(vm.config().name) + ", \"cpus\": " + std::to_string(vm.config().cpus);
		json += ", \"stop_reason\": \"" + std::string(stopReasonName(vm.stopReason())) + "\"";
		auto code = vm.guestExitCode();
		json += ", \"exit_code\": " + (code ? std::to_string(*code) : std::string("null"));
		json += ", \"pv_malformed\": " + std::to_string(vm.pvMalformed());
		json += ", \"long_spins\": " + std::to_string(vm.results().longSpins);
		json += ", \"vcpus\": [";
		const volatile spindle_hint_slot *hints = vm.hintSlots();
		for (unsigned v = 0; v < vm.config().cpus; ++v) {
			json += (v ? ", " : "") + std::string("{\"vcpu\": ") + std::to_string(v) +
				", \"exits\": " + vm.counters(v).toJson();
			// The hint slot as the guest left it: a consistent guest holds no lock at the end.
			if (hints) {
				const uint32_t waitingOn = hints[v].waiting_on;
				json += ", \"hint_at_exit\": {\"seq\": " + std::to_string(hints[v].seq) +
					", \"locks_held\": " + std::to_string(hints[v].locks_held) + ", \"waiting_on\": " +
					(waitingOn == SPINDLE_VCPU_NONE ? std::string("null") : std::to_string(waitingOn)) + "}";
			}
			json += "}";
		}
		json += "]}";
	}
	json += "]";
	if (scheduler)
		json += ", \"scheduler\": " + scheduler->metricsJson();
	return json + "}\n";
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
	const uint64_t startNs = monotonicNs();
	gStopSignal.store(0);

	// Resolve everything that can be wrong with the command line before touching KVM.
	std::vector<VmConfig> configs;
	uint64_t totalMem = 0;
	for (const VmSpec &spec : options.vms) {
		auto config = resolveVm(spec, options);
		if (!config) {
			spdlog::error("{}", config.error().message());
			return kExitUsage;
		}
		totalMem += config->memBytes;
		configs.push_back(std::move(*config));
	}
	const uint64_t hostMem = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	if (totalMem > hostMem) {
		spdlog::error("guest memory ({} MiB in all) is more than this host has ({} MiB)", totalMem >> 20, hostMem >> 20);
		return kExitUsage;
	}

	// Output files are written at the end: find out now, not after the run, that one cannot be.
	// (Opened for appending, so an existing file is left as it is until then.)
	for (const std::string *path : {&options.metricsPath, &options.resultsPath}) {
		if (path->empty())
			continue;
		FILE *probe = fopen(path->c_str(), "a");
		if (!probe) {
			spdlog::error("{}", Error::fromErrno("cannot write " + *path).message());
			return kExitUsage;
		}
		fclose(probe);
	}

	if (auto status = checkSchedulerOptions(options); !status) {
		spdlog::error("{}", status.error().message());
		return kExitUsage;
	}

	auto kvm = KvmSystem::open();
	if (!kvm) {
		spdlog::error("{} (is KVM available? try `spindle check`)", kvm.error().message());
		return kExitVmFailed;
	}
	auto scheduler = makeSessionScheduler(options);
	if (!scheduler) {
		spdlog::error("{}", scheduler.error().message());
		return scheduler.error().isInput() ? kExitUsage : kExitVmFailed;
	}
	for (const VmConfig &config : configs) {
		if (config.cpus > static_cast<unsigned>(kvm->maxVcpus())) {
			spdlog::error("{}: {} vCPUs requested; this KVM allows at most {}", config.name, config.cpus,
				      kvm->maxVcpus());
			return kExitUsage;
		}
	}

	FILE *serialFile = nullptr;
	if (options.serial == SerialMode::File) {
		serialFile = fopen(options.serialPath.c_str(), "w");
		if (!serialFile) {
			spdlog::error("{}", Error::fromErrno("--serial file " + options.serialPath).message());
			return kExitUsage;
		}
	}
	std::mutex outputMutex;
	const bool prefix = configs.size() > 1;

	FinishSignal finished;
	std::vector<std::unique_ptr<VirtualMachine>> vms;
	for (size_t i = 0; i < configs.size(); ++i) {
		const std::string name = configs[i].name;
		Serial::LineSink sink = [&, name, prefix](std::string_view line) {
			if (options.serial == SerialMode::Off)
				return;
			std::string text = (prefix ? "[" + name + "] " : std::string()) + printable(line) + "\n";
			std::lock_guard lock(outputMutex);
			FILE *out = serialFile ? serialFile : stdout;
			fwrite(text.data(), 1, text.size(), out);
			fflush(out);
		};
		auto vm = VirtualMachine::create(*kvm, std::move(configs[i]), static_cast<int>(i), sink, finished);
		if (!vm) {
			const bool usage = vm.error().isInput();
			spdlog::error("{}: {}", name, vm.error().message());
			return usage ? kExitUsage : kExitVmFailed;
		}
		(*vm)->setObserver(scheduler->get());
		if (auto status = (*scheduler)->addVm(**vm); !status) {
			spdlog::error("{}: {}", name, status.error().message());
			return kExitUsage;
		}
		vms.push_back(std::move(*vm));
	}

	installStopSignalHandlers();
	if (auto status = (*scheduler)->start(); !status) {
		spdlog::error("scheduler: {}", status.error().message());
		return kExitVmFailed;
	}
	bool startFailed = false;
	for (auto &vm : vms) {
		if (auto status = vm->start(); !status) {
			spdlog::error("{}: {}", vm->config().name, status.error().message());
			startFailed = true;
			break;
		}
	}

	// Wait for every VM, the timeout or a signal.
	bool timedOut = false;
	int signal = 0;
	uint64_t seen = 0;
	std::vector<bool> reported(vms.size(), false);
	while (!startFailed) {
		bool allDone = true;
		for (size_t i = 0; i < vms.size(); ++i) {
			const bool stopping = vms[i]->stopReason() != StopReason::None;
			if (stopping && !reported[i]) {
				reported[i] = true;
				(*scheduler)->vmStopped(vms[i]->id());
				// One VM that fails takes the run down: its numbers would be meaningless.
				if (vms[i]->stopReason() == StopReason::Fatal || vms[i]->stopReason() == StopReason::AllHalted)
					for (auto &other : vms)
						other->requestStop(StopReason::Requested, "another VM failed");
			}
			allDone = allDone && stopping;
		}
		if (allDone)
			break;
		if ((signal = gStopSignal.load()) != 0)
			break;
		if (options.timeoutMs && monotonicNs() - startNs >= options.timeoutMs * 1000000ull) {
			timedOut = true;
			break;
		}
		seen = finished.waitFor(seen, std::chrono::milliseconds(20));
	}
	for (auto &vm : vms)
		vm->requestStop(StopReason::Requested, timedOut ? "timeout" : "interrupted");
	for (auto &vm : vms)
		vm->join();
	(*scheduler)->stop();
	// A signal that came while the VMs were finishing on their own still interrupts: the caller
	// asked to stop, and a matrix must not run on past it.
	if (!signal && !timedOut)
		signal = gStopSignal.load();
	if (serialFile)
		fclose(serialFile);

	// Report.
	int status = 0;
	std::string resultsJson = "[";
	for (size_t i = 0; i < vms.size(); ++i) {
		const VirtualMachine &vm = *vms[i];
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
			vmStatus = timedOut ? kExitTimeout : kExitInterrupted;
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
		if (results.vm && !quiet)
			fputs(guestResultsTable(vm.config().name, results).c_str(), stdout);
		if (report)
			report->vms.push_back({vm.config().name, vm.config().cpus, results, stopReasonName(vm.stopReason()),
					       vm.guestExitCode(), failure});
		resultsJson += (i ? ", " : "") + guestResultsJson(vm.config().name, results);
		if (status == 0)
			status = vmStatus;
	}
	resultsJson += "]\n";
	if (timedOut)
		spdlog::error("timeout: stopped after {} s", static_cast<double>(options.timeoutMs) / 1000.0);
	if (signal)
		spdlog::warn("interrupted by signal {}: every VM stopped, results so far written", signal);
	if (timedOut)
		status = kExitTimeout;
	else if (signal)
		status = kExitInterrupted;

	std::string summary = (*scheduler)->summary();
	if (!summary.empty() && !quiet)
		spdlog::info("{}", summary);
	if (report) {
		report->schedulerMetricsJson = (*scheduler)->metricsJson();
		report->wallSeconds = static_cast<double>(monotonicNs() - startNs) / 1e9;
	}
	if (!options.metricsPath.empty())
		if (auto written = writeFile(options.metricsPath, metricsJson(vms, scheduler->get())); !written) {
			spdlog::error("{}", written.error().message());
			status = status ? status : kExitVmFailed;
		}
	if (!options.resultsPath.empty())
		if (auto written = writeFile(options.resultsPath, resultsJson); !written) {
			spdlog::error("{}", written.error().message());
			status = status ? status : kExitVmFailed;
		}
	if (options.stats) {
		uint64_t first = 0, guestResident = 0;
		for (auto &vm : vms) {
			if (vm->firstReportNs() && (!first || vm->firstReportNs() < first))
				first = vm->firstReportNs();
			guestResident += residentBytes(vm->memory());
		}
		const uint64_t rss = processRssBytes();
		fprintf(stderr, "stats: start-up %.3f ms (process start to the guest's first report)\n",
			first ? static_cast<double>(first - gProcessStartNs) / 1e6 : -1.0);
		fprintf(stderr, "stats: VMM resident memory beyond guest RAM %.2f MiB (RSS %.2f MiB, guest-resident %.2f MiB)\n",
			static_cast<double>(rss - std::min(rss, guestResident)) / 1048576.0,
			static_cast<double>(rss) / 1048576.0, static_cast<double>(guestResident) / 1048576.0);
	}
	if (report)
		report->status = status;
	return status;
}

} // namespace spindle

#include "vmm/cli/run_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "vmm/cli/exit_status.h"
#include "vmm/cli/signals.h"
#include "vmm/runtime/console_writer.h"
#include "vmm/runtime/report_json.h"
#include "vmm/runtime/session.h"

namespace spindle {

namespace {

// What the console may still take after the VMs stopped: a reader that is merely slow gets its
// output, one that never reads does not hold the run (or --timeout) hostage.
constexpr uint64_t kConsoleGraceNs = 500'000'000;

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

Status checkOutputs(const RunOptions &options)
{
	const std::pair<const char *, const std::string *> outputs[] = {
		{"--metrics", &options.metricsPath},
		{"--results", &options.resultsPath},
		{"--serial file", &options.serialPath},
	};
	for (const auto &[flag, path] : outputs)
		if (!path->empty())
			if (auto status = checkWritable(flag, *path); !status)
				return status;
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

// Both files, whatever happened; an error writing one is said and becomes the exit status if
// the run had none.
int writeOutputs(const RunOptions &options, const SessionReport *report, int status, const std::string &failure)
{
	const std::pair<const std::string *, std::string> files[] = {
		{&options.metricsPath, options.metricsPath.empty() ? "" : metricsJson(report, status, failure)},
		{&options.resultsPath, options.resultsPath.empty() ? "" : resultsJson(report, status, failure)},
	};
	for (const auto &[path, text] : files) {
		if (path->empty())
			continue;
		if (auto written = writeFile(*path, text); !written) {
			spdlog::error("{}", written.error().message());
			status = status ? status : kExitVmFailed;
		}
	}
	return status;
}

void printStats(const SessionReport &report)
{
	for (const VmReport &vm : report.vms)
		std::fprintf(stderr, "stats: %s guest mode %s (%s)\n", vm.name.c_str(), std::string(guestModeName(vm.mode)).c_str(),
			     vm.modeReason.c_str());
	const SessionStats &s = report.stats;
	std::fprintf(stderr, "stats: start-up %.3f ms (process start to the guest's first report)\n",
		     s.startupNs ? static_cast<double>(s.startupNs) / 1e6 : -1.0);
	std::fprintf(stderr, "stats: VMM resident memory beyond guest RAM %.2f MiB (RSS %.2f MiB, guest-resident %.2f MiB)\n",
		     static_cast<double>(s.rssBytes - std::min(s.rssBytes, s.guestResidentBytes)) / 1048576.0,
		     static_cast<double>(s.rssBytes) / 1048576.0, static_cast<double>(s.guestResidentBytes) / 1048576.0);
}

} // namespace

int runRunCommand(const RunOptions &options)
{
	if (auto status = checkOutputs(options); !status) {
		spdlog::error("{}", status.error().message());
		return kExitUsage; // nothing may be written to a path that was refused
	}
	ConsoleWriter console(STDOUT_FILENO, options.seccomp);
	auto report = runSession(options, SessionIo{&console, StopToken(&stopSignal()), false, /*filterMainThread=*/true});
	if (!report) {
		const int status = exitStatusFor(report.error());
		spdlog::error("{}", report.error().message());
		console.close(kConsoleGraceNs);
		return writeOutputs(options, nullptr, status, report.error().message());
	}
	int status = exitStatusFor(*report);
	for (const VmReport &vm : report->vms)
		if (vm.results.vm)
			console.write(guestResultsTable(vm.name, vm.results));
	if (report->timedOut)
		spdlog::error("timeout: stopped after {} s", static_cast<double>(options.timeoutMs) / 1000.0);
	const bool seccompStop = report->signal == kSeccompStopValue;
	if (report->signal && !seccompStop)
		spdlog::warn("interrupted by signal {}: every VM stopped, results so far written", report->signal);
	// Whatever the console could not take by now is dropped, and said so.
	if (const uint64_t dropped = console.close(kConsoleGraceNs))
		spdlog::warn("{} bytes of guest output could not be written (nobody read it in time)", dropped);

	std::string failure = report->failure;
	if (failure.empty() && report->timedOut)
		failure = "timeout";
	if (failure.empty() && seccompStop)
		failure = "a thread made a system call its seccomp filter forbids";
	if (failure.empty() && report->signal)
		failure = "interrupted by signal " + std::to_string(report->signal);
	for (const VmReport &vm : report->vms)
		if (failure.empty() && status != 0 && !vm.failure.empty())
			failure = vm.name + ": " + vm.failure;
	status = writeOutputs(options, &*report, status, failure);
	if (options.stats)
		printStats(*report);
	return status;
}

} // namespace spindle

#include "vmm/cli/bench_command.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "bench/harness/host_steal.h"
#include "bench/harness/options.h"
#include "bench/harness/results.h"
#include "bench/harness/version.h"
#include "sched/options.h"
#include "vmm/cli/exit_status.h"
#include "vmm/cli/signals.h"
#include "vmm/kvm/backend.h"
#include "vmm/runtime/guest_results.h"
#include "vmm/runtime/session.h"

namespace spindle {

namespace {

using bench::BenchOptions;
using bench::RunKind;
using bench::RunPlan;
using bench::RunRecord;
using bench::RunStatus;

std::string readFile(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream text;
	text << in.rdbuf();
	return text.str();
}

std::string quoteArg(const std::string &arg)
{
	if (!arg.empty() && arg.find_first_of(" \t'\"\\$`") == std::string::npos)
		return arg;
	std::string out = "'";
	for (char c : arg)
		out += c == '\'' ? std::string("'\\''") : std::string(1, c);
	return out + "'";
}

bench::HostInfo gatherHostInfo(const std::vector<std::string> &args)
{
	bench::HostInfo host;
	host.cpuModel = bench::cpuModelFromCpuinfo(readFile("/proc/cpuinfo"));
	const char *env = std::getenv("SPINDLE_EMULATED_HOST");
	host.kind = bench::hostKind(env ? env : "", readFile("/proc/cmdline"), host.cpuModel);
	// PVM or hardware: ring-0 guests are emulated on the first, so a reader must see which.
	host.backend = std::string(kvmBackendName(hostKvmBackend()));
	struct utsname name {};
	if (uname(&name) == 0)
		host.kernel = std::string(name.release) + " " + name.machine;
	host.cores = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
	host.version = bench::spindleVersion();
	char date[32];
	std::time_t now = std::time(nullptr);
	struct tm utc {};
	gmtime_r(&now, &utc);
	std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &utc);
	host.date = date;
	host.command = "spindle bench";
	for (const std::string &arg : args)
		host.command += " " + quoteArg(arg);
	return host;
}

// CPU time of the session's threads other than the vCPU threads and the main thread: the
// scheduler's event loop (and io_uring workers, if any). Sampled from /proc/self/task every
// 20 ms, because runSession() joins those threads before it returns; a thread's last < 20 ms
// can be missed.
class SchedulerCpuSampler
{
public:
	SchedulerCpuSampler() : thread_([this] { loop(); }) {}
	~SchedulerCpuSampler() { stop(); }

	double stopAndGetMs()
	{
		stop();
		sample();
		uint64_t total = 0;
		for (const auto &[tid, ns] : cpuNs_)
			total += vcpuTids_.count(tid) ? 0 : ns;
		return static_cast<double>(total) / 1e6;
	}

private:
	void stop()
	{
		{
			std::lock_guard lock(mutex_);
			if (stopping_)
				return;
			stopping_ = true;
		}
		wake_.notify_all();
		thread_.join();
	}

	void loop()
	{
		self_ = gettid();
		std::unique_lock lock(mutex_);
		while (!stopping_) {
			lock.unlock();
			sample();
			lock.lock();
			wake_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stopping_; });
		}
	}

	void sample()
	{
		const pid_t mainTid = getpid();
		DIR *dir = opendir("/proc/self/task");
		if (!dir)
			return;
		while (struct dirent *entry = readdir(dir)) {
			const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
			if (tid <= 0 || tid == mainTid || tid == self_)
				continue;
			const std::string base = std::string("/proc/self/task/") + entry->d_name;
			const std::string comm = readFile(base + "/comm");
			// vCPU threads name themselves "vcpuN" once started; remember them for good.
			if (comm.starts_with("vcpu")) {
				vcpuTids_.insert(tid);
				continue;
			}
			// schedstat's first field: nanoseconds on a CPU.
			const std::string schedstat = readFile(base + "/schedstat");
			if (schedstat.empty())
				continue;
			const uint64_t ns = std::strtoull(schedstat.c_str(), nullptr, 10);
			uint64_t &known = cpuNs_[tid];
			known = std::max(known, ns);
		}
		closedir(dir);
	}

	std::mutex mutex_;
	std::condition_variable wake_;
	bool stopping_ = false;
	pid_t self_ = 0;
	std::map<pid_t, uint64_t> cpuNs_;
	std::set<pid_t> vcpuTids_;
	std::thread thread_; // last: starts after every member above exists
};

VmSpec vmFrom(const bench::VmTemplate &vm, std::string name)
{
	VmSpec spec;
	spec.guest = "lockbench";
	spec.cpus = vm.vcpus;
	spec.name = std::move(name);
	spec.args = vm.args;
	return spec;
}

// The plan's VMs in its order (the scheduler places vCPUs round-robin in that order), named by
// role and a count per role ("lock0", "barrier0", "cpu0"), then the co-runner.
SessionConfig sessionFor(const BenchOptions &options, const RunPlan &plan)
{
	SessionConfig run;
	run.policy = plan.policy.policy;
	run.pauseExits = plan.policy.pauseExits;
	if (plan.policy.deadlineBoosts)
		run.schedFlags.emplace_back("boost-class", "deadline");
	run.pcpus = options.pcpus;
	run.serial = SerialMode::Off;
	run.timeoutMs = options.runTimeoutNs / 1'000'000;
	std::map<bench::VmRole, unsigned> perRole;
	for (const bench::VmTemplate &vm : plan.vms)
		run.vms.push_back(vmFrom(vm, std::string(bench::vmRoleName(vm.role)) + std::to_string(perRole[vm.role]++)));
	if (plan.coRunner)
		run.vms.push_back(vmFrom(*plan.coRunner, "corunner"));
	return run;
}

// Ends the process when a session does not return long after its own timeout: inside the
// emulated KVM host a run has been seen to hang (rarely, under any policy), and there the files
// only leave the host when the command ends. Every finished run is already on disk.
class HungRunWatchdog
{
public:
	HungRunWatchdog(unsigned index, uint64_t limitNs)
		: thread_([this, index, limitNs] {
			  std::unique_lock lock(mutex_);
			  if (wake_.wait_for(lock, std::chrono::nanoseconds(limitNs), [this] { return done_; }))
				  return;
			  std::fprintf(stderr, "bench: run %u did not return %.0f s after it started (the session hung); "
					       "stopping: the output files hold every run before it\n",
				       index, static_cast<double>(limitNs) / 1e9);
			  std::fflush(stderr);
			  _exit(kExitVmFailed);
		  })
	{
	}
	~HungRunWatchdog()
	{
		{
			std::lock_guard lock(mutex_);
			done_ = true;
		}
		wake_.notify_all();
		thread_.join();
	}

private:
	std::mutex mutex_;
	std::condition_variable wake_;
	bool done_ = false;
	std::thread thread_; // last: starts after every member above exists
};

constexpr uint64_t kHangGraceNs = 30'000'000'000;

RunRecord measure(const BenchOptions &options, const RunPlan &plan, unsigned index)
{
	RunRecord record;
	record.index = index;
	record.plan = plan;
	const SessionConfig run = sessionFor(options, plan);
	HungRunWatchdog watchdog(index, options.runTimeoutNs + kHangGraceNs);
	SchedulerCpuSampler sampler;
	const std::optional<uint64_t> stealBefore = bench::stealTicks(readFile("/proc/stat"));
	const auto start = std::chrono::steady_clock::now();
	auto report = runSession(run, SessionIo{nullptr, StopToken(&stopSignal()), /*quiet=*/true});
	record.schedulerCpuMs = sampler.stopAndGetMs();
	record.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	record.hostStealShare = bench::stealShare(stealBefore, bench::stealTicks(readFile("/proc/stat")),
						  sysconf(_SC_CLK_TCK), cpus > 0 ? static_cast<unsigned>(cpus) : 0,
						  record.wallSeconds);
	if (!report) {
		record.status = RunStatus::Failed;
		record.failure = report.error().message();
		return record;
	}

	std::string failures;
	for (size_t i = 0; i < report->vms.size(); ++i) {
		const VmReport &vm = report->vms[i];
		if (!vm.failure.empty())
			failures += (failures.empty() ? "" : "; ") + vm.name + ": " + vm.failure;
		// The session reports its VMs in the order they were asked for: the plan's, then
		// the co-runner.
		const double ops = opsPerSecond(vm.results);
		if (i < plan.vms.size())
			record.vmOps.push_back(ops);
		else
			record.cpuOps = ops;
	}
	// The VMs the session stopped because another VM failed are "stopped" too; only a session
	// in which no VM failed on its own was interrupted by a signal.
	bool vmFailedItself = false;
	for (const VmReport &vm : report->vms)
		vmFailedItself = vmFailedItself || vm.stopReason == StopReason::Fatal || vm.stopReason == StopReason::AllHalted;
	const int status = exitStatusFor(*report);
	if (report->signal && !vmFailedItself) {
		record.status = RunStatus::Interrupted;
		record.failure = "interrupted";
	} else if (status != 0) {
		record.status = RunStatus::Failed;
		record.failure = !failures.empty() ? failures
			       : report->timedOut ? "run timeout"
						  : "session exit status " + std::to_string(status);
	} else if (report->vms.size() != run.vms.size()) {
		record.status = RunStatus::Failed;
		record.failure = "the session reported " + std::to_string(report->vms.size()) + " of " +
				 std::to_string(run.vms.size()) + " VMs";
	}
	const sched::VcpuCounters totals = sched::totalOverVms(report->scheduler.core);
	record.spinWaits = sched::spinWaits(totals);
	record.boosts = totals.boosts;
	record.boostedUs = totals.boostedNs / 1000;
	record.boostFellBackToFifo = report->scheduler.host.fifoFallback;
	return record;
}

// Writes through a temporary file and rename, so a reader (or an interruption) never sees half
// a file.
Status writeAtomically(const std::filesystem::path &path, const std::string &text)
{
	const std::filesystem::path partial = path.string() + ".partial";
	FILE *file = std::fopen(partial.c_str(), "w");
	if (!file)
		return Error::fromErrno("cannot write " + partial.string());
	const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
	const bool closed = std::fclose(file) == 0;
	if (!written || !closed)
		return Error::fromErrno("cannot write " + partial.string());
	if (std::rename(partial.c_str(), path.c_str()) != 0)
		return Error::fromErrno("cannot rename " + partial.string());
	return {};
}

Status writeOutputs(const std::filesystem::path &dir, std::vector<RunRecord> &records, const bench::HostInfo &host,
		    bool complete)
{
	bench::deriveRatios(records);
	const auto cells = bench::summarize(records);
	const std::pair<const char *, std::string> files[] = {
		{ "runs.csv", bench::runsCsv(records, host) },
		{ "runs.json", bench::runsJson(records, cells, host, complete) },
		{ "summary.md", bench::summaryMarkdown(cells, host, complete) },
		{ "summary.csv", bench::summaryCsv(cells) },
	};
	for (const auto &[name, text] : files) {
		if (auto status = writeAtomically(dir / name, text); !status)
			return status;
	}
	return {};
}

std::string clock(double seconds)
{
	const auto s = static_cast<long>(seconds + 0.5);
	char buffer[32];
	std::snprintf(buffer, sizeof(buffer), "%ld:%02ld", s / 60, s % 60);
	return buffer;
}

std::string describe(const RunPlan &plan, unsigned repeats)
{
	std::string text = plan.scenario + " " + std::string(bench::runKindName(plan.kind));
	if (plan.kind == RunKind::Alone || plan.kind == RunKind::CpuAlone)
		text += " " + plan.vms.front().label();
	if (!plan.lock.empty())
		text += " " + plan.lock + " cs=" + bench::formatDuration(plan.csNs);
	if (plan.kind == RunKind::Cell || plan.kind == RunKind::Fairness)
		text += " " + std::to_string(plan.overcommit) + "x";
	text += " " + plan.policy.label();
	return text + " (rep " + std::to_string(plan.repeat + 1) + "/" + std::to_string(repeats) + ")";
}

std::vector<std::string> policyNames()
{
	std::vector<std::string> names;
	for (const auto &policy : sched::policyDescriptions())
		names.emplace_back(policy.name);
	return names;
}

} // namespace

int runBenchCommand(const std::vector<std::string> &args)
{
	auto parsed = bench::parseBenchOptions(args, policyNames());
	if (!parsed) {
		spdlog::error("bench: {}", parsed.error().message());
		return kExitUsage;
	}
	const BenchOptions &options = *parsed;
	if (options.help) {
		std::fputs(bench::benchUsage().c_str(), stdout);
		return 0;
	}

	const std::vector<RunPlan> plans = bench::expandMatrix(options.matrix);
	// Every distinct policy and the pool must pass the scheduler's own checks before the first
	// run, rather than as a failure of every cell.
	for (const RunPlan &plan : plans) {
		const SessionConfig run = sessionFor(options, plan);
		if (auto status = checkSchedulerOptions(run); !status) {
			spdlog::error("bench: {}", status.error().message());
			return kExitUsage;
		}
	}

	// Without KVM every run would fail the same way; say so once instead.
	if (int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC); fd >= 0) {
		close(fd);
	} else {
		spdlog::error("bench: cannot open /dev/kvm ({}); bench/run-matrix runs the matrix inside the "
			      "emulated KVM host", std::strerror(errno));
		return kExitVmFailed;
	}

	const std::filesystem::path dir = options.outDir;
	std::error_code error;
	std::filesystem::create_directories(dir, error);
	if (error) {
		spdlog::error("bench: cannot create output directory {}: {}", dir.string(), error.message());
		return kExitUsage;
	}
	const bench::HostInfo host = gatherHostInfo(args);
	std::vector<RunRecord> records;
	// Probe writability now: an hour of measurements must not end in a write error.
	if (auto status = writeOutputs(dir, records, host, false); !status) {
		spdlog::error("bench: output directory {}: {}", dir.string(), status.error().message());
		return kExitUsage;
	}

	std::fprintf(stderr, "bench: %zu runs; host %s (%s, %u CPUs); writing %s\n", plans.size(), host.kind.c_str(),
		     host.cpuModel.c_str(), host.cores, dir.c_str());
	const auto start = std::chrono::steady_clock::now();
	bool interrupted = false;
	unsigned failed = 0;
	for (size_t i = 0; i < plans.size() && !interrupted; ++i) {
		if (stopSignal().load()) {
			interrupted = true;
			break;
		}
		RunRecord record = measure(options, plans[i], static_cast<unsigned>(i + 1));
		if (record.status == RunStatus::Interrupted || stopSignal().load())
			interrupted = true;
		if (record.status == RunStatus::Failed) {
			++failed;
			spdlog::warn("bench: run {} failed: {}", record.index, record.failure);
		}
		const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
		const double remaining = elapsed / static_cast<double>(i + 1) * static_cast<double>(plans.size() - i - 1);
		std::fprintf(stderr, "bench: run %zu/%zu %s: %s, %.1f s; elapsed %s, remaining ~%s\n", i + 1, plans.size(),
			     describe(plans[i], options.matrix.repeats).c_str(),
			     std::string(bench::runStatusName(record.status)).c_str(), record.wallSeconds,
			     clock(elapsed).c_str(), clock(remaining).c_str());
		records.push_back(std::move(record));
		if (auto status = writeOutputs(dir, records, host, false); !status) {
			spdlog::error("bench: {}", status.error().message());
			return kExitVmFailed;
		}
	}

	if (auto status = writeOutputs(dir, records, host, !interrupted); !status) {
		spdlog::error("bench: {}", status.error().message());
		return kExitVmFailed;
	}
	std::fputs(readFile((dir / "summary.md").string()).c_str(), stdout);
	if (failed)
		spdlog::warn("bench: {} of {} runs failed; their reasons are in runs.csv", failed, records.size());
	if (interrupted) {
		spdlog::warn("bench: interrupted after {} of {} runs; files hold every finished run", records.size(),
			     plans.size());
		return kExitInterrupted;
	}
	return 0;
}

} // namespace spindle

#include "sched/observer.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>

#include "common/parse.h"
#include "common/unique_fd.h"

namespace spindle::sched {

Result<ThreadSample> parseProcStat(std::string_view line)
{
	size_t close = line.rfind(')');
	if (close == std::string_view::npos || close + 2 >= line.size())
		return Error::invalid("malformed /proc stat line (no command name)");
	std::string_view rest = line.substr(close + 2); // field 3 onwards
	ThreadSample sample;
	// Field 3 is the state; field 39 is the processor, i.e. the 37th field of `rest`.
	unsigned field = 3;
	size_t pos = 0;
	bool gotCpu = false;
	while (pos < rest.size() && field <= 39) {
		size_t end = rest.find(' ', pos);
		if (end == std::string_view::npos)
			end = rest.size();
		std::string_view token = rest.substr(pos, end - pos);
		while (!token.empty() && (token.back() == '\n'))
			token.remove_suffix(1);
		if (field == 3) {
			if (token.size() != 1)
				return Error::invalid("malformed /proc stat line (state)");
			sample.state = token[0];
		} else if (field == 39) {
			auto cpu = parseUnsigned(token, 0, 65535);
			if (!cpu)
				return cpu.error().wrap("malformed /proc stat line (processor)");
			sample.cpu = static_cast<int>(*cpu);
			gotCpu = true;
		}
		pos = end + 1;
		++field;
	}
	if (!gotCpu)
		return Error::invalid("malformed /proc stat line (too few fields)");
	return sample;
}

Result<uint64_t> parseSchedstatRuntime(std::string_view line)
{
	size_t end = line.find(' ');
	if (end == std::string_view::npos)
		return Error::invalid("malformed schedstat line");
	return parseUnsigned(line.substr(0, end));
}

namespace {

// The whole of a small /proc file, read from offset 0 into the caller's buffer (no allocation:
// this runs for every vCPU thread every tick).
Result<std::string_view> preadSmallFile(const UniqueFd &fd, char (&buf)[1024])
{
	ssize_t n = ::pread(fd.get(), buf, sizeof(buf), 0);
	if (n < 0)
		return Error::fromErrno("pread");
	return std::string_view(buf, static_cast<size_t>(n));
}

} // namespace

Result<ThreadProcFiles> ThreadProcFiles::open(pid_t tid)
{
	std::string base = "/proc/self/task/" + std::to_string(tid);
	ThreadProcFiles files;
	files.stat_.reset(::open((base + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
	if (!files.stat_.isValid())
		return Error::fromErrno("open " + base + "/stat");
	// schedstat is missing on kernels without CONFIG_SCHED_INFO: states still work without it.
	files.schedstat_.reset(::open((base + "/schedstat").c_str(), O_RDONLY | O_CLOEXEC));
	return files;
}

Result<ThreadSample> ThreadProcFiles::sample() const
{
	char buf[1024];
	// After the thread exits, reads fail with ESRCH: the caller drops it.
	auto stat = preadSmallFile(stat_, buf);
	if (!stat)
		return stat.error().wrap("/proc stat");
	auto sample = parseProcStat(*stat);
	if (!sample)
		return sample.error();
	if (schedstat_.isValid()) {
		auto schedstat = preadSmallFile(schedstat_, buf);
		if (schedstat) {
			auto runtime = parseSchedstatRuntime(*schedstat);
			if (runtime)
				sample->runtimeNs = *runtime;
		}
	}
	return sample;
}

Result<uint64_t> ThreadProcFiles::runtimeNs() const
{
	if (!schedstat_.isValid())
		return Error::invalid("no /proc schedstat (kernel without CONFIG_SCHED_INFO)");
	char buf[1024];
	auto schedstat = preadSmallFile(schedstat_, buf);
	if (!schedstat)
		return schedstat.error().wrap("/proc schedstat");
	return parseSchedstatRuntime(*schedstat);
}

Result<ThreadSample> sampleThread(pid_t tid)
{
	auto files = ThreadProcFiles::open(tid);
	if (!files)
		return files.error();
	return files->sample();
}

std::vector<VcpuState> classify(const std::vector<ClassifyInput> &threads)
{
	std::vector<VcpuState> out(threads.size(), VcpuState::Halted);
	std::map<int, size_t> busiest; // cpu -> index of the 'R' thread with the largest delta
	for (size_t i = 0; i < threads.size(); ++i) {
		const ThreadSample &s = threads[i].sample;
		if (s.state != 'R')
			continue;
		out[i] = VcpuState::Runnable;
		auto it = busiest.find(s.cpu);
		if (it == busiest.end() || threads[i].runtimeDeltaNs > threads[it->second].runtimeDeltaNs)
			busiest[s.cpu] = i;
	}
	for (const auto &[cpu, index] : busiest)
		out[index] = VcpuState::Running;
	return out;
}

} // namespace spindle::sched

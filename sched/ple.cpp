#include "sched/ple.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/parse.h"

namespace spindle::sched {

CpuVendor parseCpuVendor(std::string_view cpuinfo)
{
	size_t pos = cpuinfo.find("vendor_id");
	if (pos == std::string_view::npos)
		return CpuVendor::Unknown;
	std::string_view line = cpuinfo.substr(pos, cpuinfo.find('\n', pos) - pos);
	if (line.find("GenuineIntel") != std::string_view::npos)
		return CpuVendor::Intel;
	if (line.find("AuthenticAMD") != std::string_view::npos || line.find("HygonGenuine") != std::string_view::npos)
		return CpuVendor::Amd;
	return CpuVendor::Unknown;
}

CpuVendor hostCpuVendor()
{
	std::ifstream in("/proc/cpuinfo");
	std::stringstream text;
	text << in.rdbuf();
	return parseCpuVendor(text.str());
}

Result<std::string> pauseExitFilter(CpuVendor vendor)
{
	switch (vendor) {
	case CpuVendor::Intel: return std::string("exit_reason == 40");
	case CpuVendor::Amd: return std::string("exit_reason == 119");
	case CpuVendor::Unknown: break;
	}
	return Error(ENOTSUP, "unknown CPU vendor: no PAUSE exit reason to filter kvm:kvm_exit on");
}

namespace {

constexpr const char *kTracefs = "/sys/kernel/tracing";

std::optional<std::string> readEventFile(std::string_view event, std::string_view file)
{
	for (const char *root : { "/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/" }) {
		std::ifstream in(std::string(root) + std::string(event) + "/" + std::string(file));
		if (!in)
			continue;
		std::stringstream text;
		text << in.rdbuf();
		return text.str();
	}
	return std::nullopt;
}

bool tracefsMounted()
{
	return access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0;
}

} // namespace

Result<std::string> readTraceEventFile(std::string_view event, std::string_view file)
{
	const std::string name = std::string(event).replace(event.find('/'), 1, ":");
	auto missing = [&] { return Error(ENOENT, "no " + name + " tracepoint (is its kernel module loaded?)"); };
	if (auto text = readEventFile(event, file))
		return *text;
	if (tracefsMounted())
		return missing();
	if (geteuid() != 0)
		return Error(ENOENT, "tracefs is not mounted, so the " + name + " tracepoint cannot be found " +
					     "(as root: mount -t tracefs nodev " + kTracefs + ")");
	// As perf does, mount tracefs to find the tracepoint; unlike perf, only for the moment of
	// reading the file (a perf event needs the id, not the mount), so the host is left as it was.
	if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0)
		return Error::fromErrno(std::string("tracefs is not mounted and mounting it at ") + kTracefs + " failed");
	auto text = readEventFile(event, file);
	umount2(kTracefs, MNT_DETACH);
	spdlog::debug("tracefs was not mounted: mounted it at {} to read {}/{}, then unmounted it", kTracefs, name, file);
	if (!text)
		return missing();
	return *text;
}

Result<uint64_t> tracepointId(std::string_view event)
{
	auto text = readTraceEventFile(event, "id");
	if (!text)
		return text.error();
	while (!text->empty() && (text->back() == '\n' || text->back() == ' '))
		text->pop_back();
	return parseUnsigned(*text);
}

Result<uint64_t> kvmExitTracepointId()
{
	return tracepointId("kvm/kvm_exit");
}

Result<PleCounter> PleCounter::open(pid_t tid, uint64_t tracepointId, const std::string &filter)
{
	perf_event_attr attr{};
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = tracepointId;
	attr.exclude_kernel = 0; // the tracepoint fires in the kernel
	int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
	if (fd < 0)
		return Error::fromErrno("perf_event_open(kvm:kvm_exit) on thread " + std::to_string(tid));
	UniqueFd owned(fd);
	if (ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter.c_str()) != 0)
		return Error::fromErrno("PERF_EVENT_IOC_SET_FILTER '" + filter + "'");
	return PleCounter(std::move(owned));
}

Result<uint64_t> PleCounter::readDelta()
{
	uint64_t value = 0;
	if (::read(fd_.get(), &value, sizeof(value)) != static_cast<ssize_t>(sizeof(value)))
		return Error::fromErrno("reading the PAUSE exit counter");
	uint64_t delta = value - last_;
	last_ = value;
	return delta;
}

} // namespace spindle::sched

#pragma once

// Hardware PLE observation. KVM handles PAUSE exits in the kernel and never reports them to user
// space, but each one passes the kvm:kvm_exit tracepoint on the vCPU thread, so a per-thread
// perf counter on that tracepoint, filtered to the PAUSE exit reason, counts them. The counter
// is read once per tick (the delta feeds the pattern detector). Needs tracefs (or debugfs), the
// kvm module's tracepoints, and root/CAP_PERFMON; without them open() fails with a clear error
// and the scheduler warns once and uses the other detectors.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace spindle::sched {

enum class CpuVendor { Intel, Amd, Unknown };

// From /proc/cpuinfo text: the first vendor_id line.
CpuVendor parseCpuVendor(std::string_view cpuinfo);

// PAUSE exits counted over sinceLastNs, as a count per tickNs: the pattern detector's thresholds
// are exits per fast tick, and a quiet tick is longer. Rounded up, so one exit still counts.
inline uint64_t pauseExitsPerTick(uint64_t count, uint64_t sinceLastNs, uint64_t tickNs)
{
	if (sinceLastNs <= tickNs)
		return count;
	return (count * tickNs + sinceLastNs - 1) / sinceLastNs;
}
CpuVendor hostCpuVendor();
// The tracepoint filter selecting PAUSE exits: VMX exit reason 40, SVM exit code 0x77 (119).
Result<std::string> pauseExitFilter(CpuVendor vendor);
// A file of a tracepoint ("kvm/kvm_exit", "id") from tracefs (/sys/kernel/tracing, then
// /sys/kernel/debug/tracing); as root, mounts tracefs for the moment of reading it if needed.
Result<std::string> readTraceEventFile(std::string_view event, std::string_view file);
Result<uint64_t> tracepointId(std::string_view event);
// The id of kvm:kvm_exit.
Result<uint64_t> kvmExitTracepointId();

class PleCounter
{
public:
	static Result<PleCounter> open(pid_t tid, uint64_t tracepointId, const std::string &filter);
	// PAUSE exits since the previous call.
	Result<uint64_t> readDelta();
	int fd() const { return fd_.get(); }

private:
	explicit PleCounter(UniqueFd fd) : fd_(std::move(fd)) {}
	UniqueFd fd_;
	uint64_t last_ = 0;
};

} // namespace spindle::sched

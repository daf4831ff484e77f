#pragma once

// Host observation of vCPU threads: which are running, runnable or halted, and on which CPU.
// /proc/self/task/TID/stat gives the state letter and field 39 (processor, the last CPU);
// /proc/self/task/TID/schedstat gives the CPU time consumed. 'R' means running *or* runnable, so
// classify() tells them apart per CPU: of the 'R' threads last seen on one CPU, the one that
// consumed the most CPU time since the previous sample is taken as running, the others as
// runnable. The parsing and the classification are pure; ThreadProcFiles does the reading
// (sampleThread() once, opening and closing the files).

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "sched/model.h"

namespace spindle::sched {

struct ThreadSample {
	char state = '?';       // R, S, D, T, t, Z, X, I ...
	int cpu = -1;           // field 39
	uint64_t runtimeNs = 0; // schedstat field 1
};

// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so parsing starts after the last ')'.
Result<ThreadSample> parseProcStat(std::string_view line);
// First field of /proc/.../schedstat: CPU time in ns.
Result<uint64_t> parseSchedstatRuntime(std::string_view line);
Result<ThreadSample> sampleThread(pid_t tid);

// The reading with both files kept open: each tick then costs two pread()s per thread
// instead of two open/read/close sequences, which matters at a 1 ms tick (the scheduler's own
// CPU time is taken from the vCPUs it schedules).
class ThreadProcFiles
{
public:
	ThreadProcFiles() = default;
	static Result<ThreadProcFiles> open(pid_t tid);
	Result<ThreadSample> sample() const;
	// Only the CPU time (schedstat): a fifth of the cost of sample(), whose stat read is the
	// expensive one (2.7 against 0.6 us here). An error where schedstat is missing.
	Result<uint64_t> runtimeNs() const;

private:
	UniqueFd stat_;
	UniqueFd schedstat_;
};

struct ClassifyInput {
	ThreadSample sample;
	uint64_t runtimeDeltaNs = 0;
};
std::vector<VcpuState> classify(const std::vector<ClassifyInput> &threads);

} // namespace spindle::sched

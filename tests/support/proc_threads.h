#pragma once

// The threads of a running process, from /proc/PID/task: tests that look at one of spindle's
// threads by its name ("spindle-sched", "vcpu0", ...), and tests that need a thread gone.

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/files.h"

namespace spindle::test {

// (tid, name) of every thread of pid; empty once it is gone.
inline std::vector<std::pair<pid_t, std::string>> threadsOf(pid_t pid)
{
	std::vector<std::pair<pid_t, std::string>> threads;
	std::error_code error;
	for (const auto &task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
		std::string name = readFile(task.path() / "comm");
		name = name.substr(0, name.find('\n'));
		threads.emplace_back(static_cast<pid_t>(std::atoi(task.path().filename().c_str())), name);
	}
	return threads;
}

// Waits up to 1 s until this process's thread tid is reaped; false if it is still there.
// std::thread::join() returns when the thread clears its tid, a moment before the kernel has
// released it: until then /proc/self/task/TID, and every fd opened there, still reads.
inline bool waitUntilReaped(pid_t tid)
{
	const std::string dir = "/proc/self/task/" + std::to_string(tid);
	for (int i = 0; i < 1000 && access(dir.c_str(), F_OK) == 0; ++i)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	return access(dir.c_str(), F_OK) != 0;
}

} // namespace spindle::test

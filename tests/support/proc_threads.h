#pragma once

// The threads of a running process, from /proc/PID/task: tests that look at one of spindle's
// threads by its name ("spindle-sched", "vcpu0", ...).

#include <sys/types.h>

#include <cstdlib>
#include <filesystem>
#include <string>
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

} // namespace spindle::test

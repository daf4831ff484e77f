#pragma once

// Runs a program with arguments, captures stdout and stderr, and kills it after a deadline, so
// a test of a hanging VMM fails instead of hanging the suite.

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace spindle::test {

struct CommandResult {
	int status = -1; // exit status, or 128 + signal
	std::string out;
	std::string err;
	double seconds = 0;
	double cpuSeconds = 0; // user + system time of the program (all its threads)
	bool killed = false;   // the deadline passed
};

inline double nowSeconds()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

enum class Stdout { Read, NeverRead };

// With Stdout::NeverRead the program's stdout is a pipe nobody reads (it fills after 64 KiB, as
// under `| (sleep 8; cat)`); result.out stays empty.
inline CommandResult runCommand(const std::vector<std::string> &argv, double deadlineSeconds = 120,
				Stdout stdoutMode = Stdout::Read)
{
	CommandResult result;
	int outPipe[2], errPipe[2];
	if (pipe2(outPipe, O_CLOEXEC) < 0 || pipe2(errPipe, O_CLOEXEC) < 0)
		return result;
	const double start = nowSeconds();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(outPipe[1], 1);
		dup2(errPipe[1], 2);
		std::vector<char *> args;
		for (const std::string &a : argv)
			args.push_back(const_cast<char *>(a.c_str()));
		args.push_back(nullptr);
		execv(args[0], args.data());
		_exit(127);
	}
	close(outPipe[1]);
	close(errPipe[1]);
	const int unread = stdoutMode == Stdout::NeverRead ? outPipe[0] : -1;
	pollfd fds[2] = {{stdoutMode == Stdout::NeverRead ? -1 : outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
	int open = stdoutMode == Stdout::NeverRead ? 1 : 2;
	while (open > 0) {
		const double left = deadlineSeconds - (nowSeconds() - start);
		if (left <= 0) {
			kill(pid, SIGKILL);
			result.killed = true;
			break;
		}
		if (poll(fds, 2, static_cast<int>(left * 1000) + 1) <= 0)
			continue;
		for (int i = 0; i < 2; ++i) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			char buffer[4096];
			ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
			if (n <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				--open;
			} else {
				(i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
			}
		}
	}
	for (auto &fd : fds)
		if (fd.fd >= 0)
			close(fd.fd);
	int status = 0;
	rusage usage{};
	auto cpuOf = [&usage] {
		return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
		       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
	};
	if (unread >= 0) {
		// Wait with the pipe still full and open, as a reader that never reads would.
		wait4(pid, &status, 0, &usage);
		result.cpuSeconds = cpuOf();
		close(unread);
		result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		result.seconds = nowSeconds() - start;
		return result;
	}
	wait4(pid, &status, 0, &usage);
	result.cpuSeconds = cpuOf();
	result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	result.seconds = nowSeconds() - start;
	return result;
}

// The spindle binary under test: $SPINDLE_BIN (set by meson test and the emulated host).
// Starts a program in the background with its stdout and stderr written to files (an empty
// path leaves that stream as it is); returns its pid, or -1 with errno set.
inline pid_t spawnProgram(const std::vector<std::string> &argv, const std::string &stdoutPath,
			  const std::string &stderrPath = "")
{
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	if (!stdoutPath.empty())
		posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdoutPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (!stderrPath.empty())
		posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderrPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	std::vector<char *> args;
	for (const std::string &arg : argv)
		args.push_back(const_cast<char *>(arg.c_str()));
	args.push_back(nullptr);
	pid_t pid = -1;
	const int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	errno = error;
	return error == 0 ? pid : -1;
}

inline std::string spindleBinary()
{
	const char *path = std::getenv("SPINDLE_BIN");
	return path ? path : "spindle";
}

} // namespace spindle::test

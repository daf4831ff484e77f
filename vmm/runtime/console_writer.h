#pragma once

// Guest console output and result tables on their way to stdout (or a --serial file), written
// by a thread of their own. vCPU threads only queue text, so a terminal that scrolls slowly or
// a pipe nobody reads never holds a vCPU inside a device write, and the main thread gives the
// writer a deadline at the end: `--timeout 3` holds even under `spindle run ... | (sleep 8; cat)`.
//
// The queue is bounded; what does not fit is dropped and counted, and close() says how much was
// lost in one line on stderr.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "vmm/runtime/seccomp_filter.h"

namespace spindle {

class ConsoleWriter
{
public:
	static constexpr size_t kDefaultQueueBytes = 1 << 20;

	// fd stays owned by the caller and must outlive close(). Starts the writer thread, which
	// installs the console role's seccomp filter for itself.
	explicit ConsoleWriter(int fd, SeccompMode seccomp = SeccompMode::Off, size_t maxQueuedBytes = kDefaultQueueBytes);
	~ConsoleWriter(); // close(0)
	ConsoleWriter(const ConsoleWriter &) = delete;
	ConsoleWriter &operator=(const ConsoleWriter &) = delete;

	// Queues text; never blocks on the fd. Text that would exceed the bound is dropped whole.
	void write(std::string_view text);

	// Waits until everything queued is written or graceNs passed, then stops the thread;
	// whatever is left is dropped. Idempotent. Returns the bytes dropped in all.
	uint64_t close(uint64_t graceNs);

	uint64_t droppedBytes() const;

private:
	void run();
	// Writes all of text, waiting for the fd with poll() in short steps so that close() can
	// abandon a write that would never complete. False once abandoned or on a write error.
	bool writeAll(std::string_view text);

	int fd_;
	SeccompMode seccomp_;
	size_t maxQueued_;
	mutable std::mutex mutex_;
	std::condition_variable wake_;
	std::condition_variable drained_;
	std::deque<std::string> queue_;
	size_t queued_ = 0;
	bool writing_ = false;
	bool closing_ = false;
	bool abandon_ = false;
	bool failed_ = false;
	uint64_t dropped_ = 0;
	std::thread thread_;
};

} // namespace spindle

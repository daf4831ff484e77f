#include "vmm/runtime/console_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace spindle {

namespace {
// A pipe that reports POLLOUT has room for at least PIPE_BUF bytes, so writes of this size never
// block on one; on a terminal or a file they are simply small writes.
constexpr size_t kChunk = 4096;
constexpr int kPollStepMs = 20;
} // namespace

ConsoleWriter::ConsoleWriter(int fd, SeccompMode seccomp, size_t maxQueuedBytes)
	: fd_(fd), seccomp_(seccomp), maxQueued_(maxQueuedBytes)
{
	thread_ = std::thread(&ConsoleWriter::run, this);
}

ConsoleWriter::~ConsoleWriter()
{
	close(0);
}

void ConsoleWriter::write(std::string_view text)
{
	if (text.empty())
		return;
	{
		std::lock_guard lock(mutex_);
		if (closing_ || failed_ || queued_ + text.size() > maxQueued_) {
			dropped_ += text.size();
			return;
		}
		queue_.emplace_back(text);
		queued_ += text.size();
	}
	wake_.notify_one();
}

uint64_t ConsoleWriter::droppedBytes() const
{
	std::lock_guard lock(mutex_);
	return dropped_;
}

uint64_t ConsoleWriter::close(uint64_t graceNs)
{
	{
		std::unique_lock lock(mutex_);
		if (!thread_.joinable())
			return dropped_;
		closing_ = true;
		wake_.notify_one();
		drained_.wait_for(lock, std::chrono::nanoseconds(graceNs),
				  [&] { return (queue_.empty() && !writing_) || failed_; });
		abandon_ = true;
		for (const std::string &text : queue_)
			dropped_ += text.size();
		queue_.clear();
		queued_ = 0;
	}
	wake_.notify_one();
	thread_.join();
	std::lock_guard lock(mutex_);
	return dropped_;
}

void ConsoleWriter::run()
{
	// Without its filter the console still writes: a failure here is said by the session's own
	// install, which fails the same way first.
	(void)installSeccompFilter(ThreadRole::Console, seccomp_);
	seccompSelfTest(ThreadRole::Console, seccomp_);
	std::unique_lock lock(mutex_);
	for (;;) {
		wake_.wait(lock, [&] { return !queue_.empty() || closing_ || abandon_; });
		if (abandon_ || (closing_ && queue_.empty()))
			break;
		std::string text = std::move(queue_.front());
		queue_.pop_front();
		queued_ -= text.size();
		writing_ = true;
		lock.unlock();
		const bool ok = writeAll(text);
		lock.lock();
		writing_ = false;
		if (!ok) {
			failed_ = true;
			for (const std::string &rest : queue_)
				dropped_ += rest.size();
			queue_.clear();
			queued_ = 0;
		}
		if (queue_.empty())
			drained_.notify_all();
		if (failed_)
			break;
	}
	drained_.notify_all();
}

bool ConsoleWriter::writeAll(std::string_view text)
{
	while (!text.empty()) {
		pollfd ready{fd_, POLLOUT, 0};
		const int n = poll(&ready, 1, kPollStepMs);
		if (n < 0 && errno != EINTR)
			return false;
		if (n <= 0) {
			std::lock_guard lock(mutex_);
			if (abandon_) {
				dropped_ += text.size();
				return false;
			}
			continue;
		}
		if (ready.revents & (POLLERR | POLLNVAL))
			return false;
		const ssize_t written = ::write(fd_, text.data(), std::min(text.size(), kChunk));
		if (written < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return false;
		}
		text.remove_prefix(static_cast<size_t>(written));
	}
	return true;
}

} // namespace spindle

#pragma once

// The scheduler thread's event loop: readiness of a few fds (timerfds, eventfds, perf fds)
// dispatched to handlers. io_uring (one-shot POLL_ADD per fd, re-armed after its handler runs)
// where it works; epoll where io_uring_queue_init fails (some kernels and containers disable
// io_uring) or when asked for, with a one-line warning on the involuntary fallback.
// Single-threaded: add() and runOnce() from the scheduler thread only.

#include <functional>
#include <memory>

#include "common/result.h"

namespace spindle::sched {

class EventLoop
{
public:
	using Handler = std::function<void()>;

	// forceEpoll: skip io_uring (tests use it to cover the fallback).
	static Result<std::unique_ptr<EventLoop>> create(bool forceEpoll);
	virtual ~EventLoop() = default;

	// Calls handler whenever fd is readable; the handler must consume what made it readable.
	virtual Status add(int fd, Handler handler) = 0;
	// Waits up to timeoutMs (-1: forever) and dispatches what is ready.
	virtual Status runOnce(int timeoutMs) = 0;
	virtual const char *backend() const = 0;
};

} // namespace spindle::sched

#include "sched/event_loop.h"

#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>

#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace spindle::sched {

namespace {

class EpollLoop : public EventLoop
{
public:
	explicit EpollLoop(UniqueFd epfd) : epfd_(std::move(epfd)) {}

	Status add(int fd, Handler handler) override
	{
		epoll_event ev{};
		ev.events = EPOLLIN;
		ev.data.u64 = handlers_.size();
		if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
			return Error::fromErrno("epoll_ctl(ADD, fd " + std::to_string(fd) + ")");
		handlers_.push_back(std::move(handler));
		return {};
	}

	Status runOnce(int timeoutMs) override
	{
		epoll_event events[16];
		int n = epoll_wait(epfd_.get(), events, 16, timeoutMs);
		if (n < 0) {
			if (errno == EINTR)
				return {};
			return Error::fromErrno("epoll_wait");
		}
		for (int i = 0; i < n; ++i)
			handlers_[events[i].data.u64]();
		return {};
	}

	const char *backend() const override { return "epoll"; }

private:
	UniqueFd epfd_;
	std::vector<Handler> handlers_;
};

class UringLoop : public EventLoop
{
public:
	UringLoop() = default;
	~UringLoop() override
	{
		if (initialized_)
			io_uring_queue_exit(&ring_);
	}

	int init()
	{
		int ret = io_uring_queue_init(32, &ring_, 0);
		initialized_ = ret == 0;
		return ret;
	}

	Status add(int fd, Handler handler) override
	{
		fds_.push_back(fd);
		handlers_.push_back(std::move(handler));
		return arm(fds_.size() - 1);
	}

	Status runOnce(int timeoutMs) override
	{
		io_uring_cqe *cqe = nullptr;
		int ret;
		if (timeoutMs < 0) {
			ret = io_uring_submit_and_wait(&ring_, 1);
			if (ret >= 0)
				ret = io_uring_peek_cqe(&ring_, &cqe);
		} else {
			io_uring_submit(&ring_);
			__kernel_timespec ts{ timeoutMs / 1000, (timeoutMs % 1000) * 1'000'000LL };
			ret = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
		}
		if (ret == -ETIME || ret == -EINTR || ret == -EAGAIN)
			return {};
		if (ret < 0)
			return Error(-ret, "io_uring wait");

		// Dispatch every completion now available, then re-arm those fds.
		std::vector<size_t> &ready = ready_; // kept: a tick allocates nothing
		ready.clear();
		unsigned head;
		unsigned seen = 0;
		io_uring_for_each_cqe(&ring_, head, cqe)
		{
			++seen;
			ready.push_back(static_cast<size_t>(io_uring_cqe_get_data64(cqe)));
		}
		io_uring_cq_advance(&ring_, seen);
		for (size_t index : ready) {
			handlers_[index]();
			Status s = arm(index);
			if (!s)
				return s;
		}
		return {};
	}

	const char *backend() const override { return "io_uring"; }

private:
	Status arm(size_t index)
	{
		io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
		if (!sqe) {
			io_uring_submit(&ring_);
			sqe = io_uring_get_sqe(&ring_);
			if (!sqe)
				return Error(EBUSY, "io_uring submission queue full");
		}
		io_uring_prep_poll_add(sqe, fds_[index], POLLIN);
		io_uring_sqe_set_data64(sqe, index);
		return {};
	}

	io_uring ring_{};
	bool initialized_ = false;
	std::vector<int> fds_;
	std::vector<Handler> handlers_;
	std::vector<size_t> ready_; // one wake-up's completions
};

} // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create(bool forceEpoll)
{
	if (!forceEpoll) {
		auto uring = std::make_unique<UringLoop>();
		int ret = uring->init();
		if (ret == 0)
			return std::unique_ptr<EventLoop>(std::move(uring));
		spdlog::warn("io_uring unavailable ({}); the scheduler falls back to epoll", std::strerror(-ret));
	}
	UniqueFd epfd(epoll_create1(EPOLL_CLOEXEC));
	if (!epfd.isValid())
		return Error::fromErrno("epoll_create1");
	return std::unique_ptr<EventLoop>(std::make_unique<EpollLoop>(std::move(epfd)));
}

} // namespace spindle::sched

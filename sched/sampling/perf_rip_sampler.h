#pragma once

// RIP samples of a running vCPU without taking it out of KVM_RUN (way G of
// bench/sampling/rip_sample_cost.cpp, the cheapest measured): perf's cpu-clock event on the
// vCPU thread samples the interrupted IP into a ring buffer that the scheduler thread drains. Where KVM
// tells perf that the interrupt came from its guest (it does on PVM, and on VMX/SVM with perf's
// guest callbacks), the record holds the guest's RIP and says guest user or guest kernel, which
// is the CPL; the vCPU never leaves KVM_RUN for it. The clock counts the thread's CPU time, so
// only a vCPU that runs is sampled, at one sample per period of its running time. Needs
// CAP_PERFMON (or root, or perf_event_paranoid <= 1) for samples outside user space.

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/result.h"

namespace spindle::sched::sampling {

struct PerfRipSample {
	uint64_t ip = 0;
	uint64_t timeNs = 0; // CLOCK_MONOTONIC
	bool guest = false;  // the guest's (PERF_RECORD_MISC_GUEST_USER or _KERNEL)
	bool guestKernel = false;
};

class PerfRipSampler
{
public:
	// periodNs of the thread's CPU time between samples.
	static Result<PerfRipSampler> open(pid_t tid, uint64_t periodNs)
	{
		perf_event_attr attr{};
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		attr.sample_period = periodNs;
		attr.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TIME;
		attr.use_clockid = 1;
		attr.clockid = CLOCK_MONOTONIC;
		int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
		if (fd < 0)
			return Error::fromErrno("perf_event_open(cpu-clock) on thread " + std::to_string(tid));
		void *map = mmap(nullptr, kMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			Error error = Error::fromErrno("mmap of the perf ring");
			close(fd);
			return error;
		}
		return PerfRipSampler(fd, map);
	}

	// A new sampling period, effective from the next sample (PERF_EVENT_IOC_PERIOD).
	Status setPeriod(uint64_t periodNs)
	{
		if (ioctl(fd_, PERF_EVENT_IOC_PERIOD, &periodNs) != 0)
			return Error::fromErrno("PERF_EVENT_IOC_PERIOD");
		return {};
	}

	PerfRipSampler(PerfRipSampler &&other) noexcept
		: fd_(std::exchange(other.fd_, -1)), map_(std::exchange(other.map_, nullptr))
	{
	}
	PerfRipSampler &operator=(PerfRipSampler &&) = delete;
	~PerfRipSampler()
	{
		if (map_)
			munmap(map_, kMapBytes);
		if (fd_ >= 0)
			close(fd_);
	}

	// Hands every sample the ring holds to onSample; returns how many. Records are copied out
	// byte by byte (one may wrap around the ring's end) before they are looked at.
	template<typename OnSample>
	uint64_t drain(OnSample &&onSample)
	{
		auto *header = static_cast<perf_event_mmap_page *>(map_);
		const auto *data = static_cast<const uint8_t *>(map_) + kPage;
		uint64_t head = __atomic_load_n(&header->data_head, __ATOMIC_ACQUIRE), tail = header->data_tail;
		uint64_t samples = 0;
		while (tail < head) {
			uint8_t record[32] = {};
			for (size_t i = 0; i < sizeof(record); i++)
				record[i] = data[(tail + i) % kDataBytes];
			perf_event_header h;
			std::memcpy(&h, record, sizeof(h));
			if (h.type == PERF_RECORD_SAMPLE && h.size >= 24) {
				PerfRipSample s;
				std::memcpy(&s.ip, record + 8, 8);
				std::memcpy(&s.timeNs, record + 16, 8);
				unsigned mode = h.misc & PERF_RECORD_MISC_CPUMODE_MASK;
				s.guestKernel = mode == PERF_RECORD_MISC_GUEST_KERNEL;
				s.guest = s.guestKernel || mode == PERF_RECORD_MISC_GUEST_USER;
				onSample(s);
				samples++;
			}
			tail += std::max<uint16_t>(h.size, sizeof(h));
		}
		__atomic_store_n(&header->data_tail, tail, __ATOMIC_RELEASE);
		return samples;
	}

private:
	// 32 KiB: a tick's samples at the highest rate take a few hundred bytes.
	static constexpr uint64_t kPage = 4096, kDataBytes = 8 * kPage, kMapBytes = kPage + kDataBytes;

	PerfRipSampler(int fd, void *map) : fd_(fd), map_(map) {}

	int fd_ = -1;
	void *map_ = nullptr;
};

} // namespace spindle::sched::sampling

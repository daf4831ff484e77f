#pragma once

// Real threads standing in for vCPU threads in the actuator's and the Scheduler's tests, what
// they read back from the kernel, and the seam for system calls that fail: the kernel itself.

#include <gtest/gtest.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include "sched/actuator.h"

namespace spindle::test {

// A thread that spins, counting its loops; with a ticket lock it spins like a vCPU in a guest.
// With a pause it sleeps that long every loop instead (sleepingThread()).
class SpinThread
{
public:
	explicit SpinThread(std::atomic<uint64_t> *ticket = nullptr, std::atomic<uint64_t> *serving = nullptr,
			    std::chrono::microseconds pause = std::chrono::microseconds(0))
	{
		thread_ = std::thread([this, ticket, serving, pause] {
			tid_.store(gettid());
			while (!stop_.load(std::memory_order_relaxed)) {
				if (pause.count() > 0) {
					std::this_thread::sleep_for(pause);
					loops_.fetch_add(1, std::memory_order_relaxed);
				} else if (ticket) {
					uint64_t mine = ticket->fetch_add(1);
					while (serving->load(std::memory_order_acquire) != mine &&
					       !stop_.load(std::memory_order_relaxed))
						__builtin_ia32_pause();
					loops_.fetch_add(1, std::memory_order_relaxed);
					serving->store(mine + 1, std::memory_order_release);
				} else {
					loops_.fetch_add(1, std::memory_order_relaxed);
				}
			}
		});
		while (tid_.load() == 0)
			std::this_thread::yield();
	}
	~SpinThread()
	{
		stop_.store(true);
		thread_.join();
	}
	pid_t tid() const { return tid_.load(); }
	uint64_t loops() const { return loops_.load(std::memory_order_relaxed); }

private:
	std::atomic<pid_t> tid_{ 0 };
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> loops_{ 0 };
	std::thread thread_;
};

// A thread that sleeps 1 ms at a time. For tests that boost it and then look: a boosted spinner
// can keep the looking thread off its CPU past a short budget, and the boost's alarm
// (sched/boost_alarm.h) would have ended it before the look.
inline SpinThread sleepingThread()
{
	return SpinThread(nullptr, nullptr, std::chrono::milliseconds(1));
}

inline std::vector<int> affinityOf(pid_t tid)
{
	cpu_set_t set;
	EXPECT_EQ(sched_getaffinity(tid, sizeof(set), &set), 0);
	std::vector<int> cpus;
	for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
		if (CPU_ISSET(cpu, &set))
			cpus.push_back(cpu);
	return cpus;
}

inline uint32_t policyOf(pid_t tid)
{
	auto attr = sched::getSchedAttr(tid);
	EXPECT_TRUE(attr.ok());
	return attr.ok() ? attr->policy : ~0u;
}

// The seam for restores that fail: the kernel itself. A seccomp filter on the calling thread
// only makes its sched_setattr and sched_setaffinity calls (those on thread `onlyTid`, or every
// one with 0) return -errorCode without doing anything; errorCode 0 makes them claim success
// (a restore silently skipped). Production code has no hook for this.
inline void interceptSchedulingCalls(int errorCode, pid_t onlyTid = 0)
{
	std::vector<sock_filter> program = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setattr, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setaffinity, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	if (onlyTid != 0) {
		// The low half of the first argument (little-endian), which is the target thread.
		program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));
		program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(onlyTid), 1, 0));
		program.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	}
	program.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<uint32_t>(errorCode) & SECCOMP_RET_DATA)));
	sock_fprog filter{ static_cast<unsigned short>(program.size()), program.data() };
	ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ASSERT_EQ(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter), 0);
}

// Runs `body` on a new thread whose scheduling calls interceptSchedulingCalls(errorCode) turned off.
template<typename Body>
inline void withSchedulingCallsIntercepted(int errorCode, Body body)
{
	std::thread([&] {
		interceptSchedulingCalls(errorCode);
		body();
	}).join();
}

} // namespace spindle::test

#pragma once

// Queue locks: MCS, and qspin (an MCS queue in front of a lock word that anyone may steal).

#include "guest-kernels/locks/spin_wait.h"
#include "guest-kernels/locks/tas.h"

namespace spindle::locks {

// One queue node per vCPU, each on its own cache line so every waiter spins locally.
struct alignas(64) McsNode {
	McsNode *next = nullptr;
	uint32_t locked = 0;
};

// The queue both locks share: a tail pointer and a node per vCPU. Each lock object owns its
// nodes (rather than the caller passing one) so that acquire(cpu)/release(cpu) look the same
// for every lock and a waiter can name its predecessor's vCPU.
class McsQueue
{
public:
	// Appends cpu's node and waits until it is at the head of the queue.
	template<typename Wait>
	void enqueueAndWaitForHead(uint32_t cpu, Wait &wait)
	{
		McsNode *node = &nodes_[cpu];
		__atomic_store_n(&node->next, nullptr, __ATOMIC_RELAXED);
		__atomic_store_n(&node->locked, 1, __ATOMIC_RELAXED);
		McsNode *pred = __atomic_exchange_n(&tail_, node, __ATOMIC_ACQ_REL);
		if (!pred)
			return;
		__atomic_store_n(&pred->next, node, __ATOMIC_RELEASE);
		uint32_t predCpu = static_cast<uint32_t>(pred - nodes_);
		while (__atomic_load_n(&node->locked, __ATOMIC_ACQUIRE))
			wait.spin(predCpu);
	}

	// Leaves the head of the queue and makes the successor (if any) the new head.
	template<typename P>
	void passHead(uint32_t cpu)
	{
		McsNode *node = &nodes_[cpu];
		McsNode *next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE);
		if (!next) {
			McsNode *expected = node;
			if (__atomic_compare_exchange_n(&tail_, &expected, nullptr, false,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				return;
			// A successor swapped itself in but has not linked to us yet; it will shortly.
			while (!(next = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE)))
				P::pause(cpu);
		}
		__atomic_store_n(&next->locked, 0, __ATOMIC_RELEASE);
	}

private:
	McsNode *tail_ = nullptr;
	McsNode nodes_[kMaxCpus];
};

// Classic MCS: FIFO, each waiter spins on its own node; the head of the queue holds the lock.
template<typename P>
class McsLock
{
public:
	constexpr explicit McsLock(uint32_t id = 0) : id_(id) {}

	uint64_t acquire(uint32_t cpu)
	{
		SpinWait<P, false> wait(cpu, id_);
		queue_.enqueueAndWaitForHead(cpu, wait);
		return wait.finish();
	}

	void release(uint32_t cpu) { queue_.passHead<P>(cpu); }

private:
	uint32_t id_;
	McsQueue queue_;
};

// In the spirit of Linux's qspinlock: a lock word, taken with one compare-and-swap on the fast
// path, and an MCS queue that orders the waiters. Only the head of the queue spins on the lock
// word; everyone else spins on its own node. A newcomer that finds the word free takes it even if
// others are queued (stealing), so a preempted queue head does not stall a free lock forever.
template<typename P>
class QspinLock
{
public:
	constexpr explicit QspinLock(uint32_t id = 0) : id_(id) {}

	uint64_t acquire(uint32_t cpu)
	{
		if (word_.tryAcquire(cpu))
			return 0;
		SpinWait<P, false> wait(cpu, id_);
		queue_.enqueueAndWaitForHead(cpu, wait);
		while (!(word_.isFree() && word_.tryAcquire(cpu)))
			wait.spin(word_.holder());
		queue_.passHead<P>(cpu);
		return wait.finish();
	}

	void release(uint32_t) { word_.release(); }

private:
	uint32_t id_;
	alignas(64) HolderWord word_; // away from the queue tail, which newcomers write
	McsQueue queue_;
};

} // namespace spindle::locks

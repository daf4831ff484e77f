#pragma once

// A map from thread id to T for the scheduler thread's per-event lookups: open addressing with
// linear probing, keys and values inline in one array. The switch source looks a thread up two
// or three times per sched event (40,000 a second with halting vCPUs) and once per thread per
// tick, each time with caches cold from the vCPUs that ran since; std::unordered_map's bucket
// array, node chase and modulo made those lookups a quarter of the scheduler thread's CPU
// (perf, sched-observe-cost at 256 halting threads). Thread ids are positive, so 0 marks an
// empty slot; a non-positive id is never stored and never found (the idle task is pid 0).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace spindle::sched {

template<typename T>
class PidTable
{
public:
	T *find(pid_t tid) { return const_cast<T *>(std::as_const(*this).find(tid)); }
	const T *find(pid_t tid) const
	{
		if (tid <= 0 || slots_.empty())
			return nullptr;
		for (size_t at = home(tid);; at = (at + 1) & mask()) {
			const Slot &slot = slots_[at];
			if (slot.tid == tid)
				return &slot.value;
			if (slot.tid == 0)
				return nullptr;
		}
	}
	// The value of tid, value-initialized when new; nullptr for a non-positive tid.
	T *insert(pid_t tid)
	{
		if (tid <= 0)
			return nullptr;
		if (T *found = find(tid))
			return found;
		if ((size_ + 1) * 2 > slots_.size())
			grow();
		size_t at = home(tid);
		while (slots_[at].tid != 0)
			at = (at + 1) & mask();
		slots_[at].tid = tid;
		slots_[at].value = T{};
		size_++;
		return &slots_[at].value;
	}
	void erase(pid_t tid)
	{
		if (tid <= 0 || slots_.empty())
			return;
		size_t hole = home(tid);
		while (slots_[hole].tid != tid) {
			if (slots_[hole].tid == 0)
				return;
			hole = (hole + 1) & mask();
		}
		// Backward shift: move each later entry of the run into the hole when the hole lies
		// between its home and where it sits, so every probe run stays unbroken.
		for (size_t at = (hole + 1) & mask(); slots_[at].tid != 0; at = (at + 1) & mask()) {
			const size_t want = home(slots_[at].tid);
			if (((at - want) & mask()) >= ((at - hole) & mask())) {
				slots_[hole] = std::move(slots_[at]);
				hole = at;
			}
		}
		slots_[hole] = Slot{};
		size_--;
	}
	size_t size() const { return size_; }

private:
	struct Slot {
		pid_t tid = 0;
		T value{};
	};
	size_t mask() const { return slots_.size() - 1; }
	size_t home(pid_t tid) const
	{
		// Fibonacci hashing: consecutive thread ids (a VM's vCPUs) spread over the table.
		return static_cast<size_t>((static_cast<uint64_t>(tid) * 0x9E3779B97F4A7C15ull) >> 32) & mask();
	}
	void grow()
	{
		std::vector<Slot> old = std::move(slots_);
		slots_.clear();
		slots_.resize(old.empty() ? 16 : old.size() * 2);
		size_ = 0;
		for (Slot &slot : old)
			if (slot.tid != 0)
				*insert(slot.tid) = std::move(slot.value);
	}
	std::vector<Slot> slots_;
	size_t size_ = 0;
};

} // namespace spindle::sched

#pragma once

// A fake clock and a thin harness around the policy core, so scenarios read as
// "arrange the model, send an event, look at the actions".

#include <algorithm>
#include <vector>

#include "sched/core.h"
#include "sched/policy.h"
#include "spindle_abi.h"

namespace spindle::sched::test {

class FakeClock : public Clock
{
public:
	uint64_t nowNs() const override { return t_; }
	void advance(uint64_t ns) { t_ += ns; }

private:
	uint64_t t_ = 1'000'000'000; // not zero: "never happened" must not look like "at time 0"
};

inline SchedulerOptions withPolicy(PolicyKind kind)
{
	SchedulerOptions o;
	o.policy = kind;
	return o;
}

struct Harness {
	explicit Harness(SchedulerOptions options, std::vector<int> pool = { 0, 1 })
		: core(std::move(options), std::move(pool), clock)
	{
		core.enableTrace(true);
	}

	// Sets every vCPU of a VM: states[i] for vCPU i, on cpus[i].
	void setStates(int vm, std::vector<VcpuState> states, std::vector<int> cpus)
	{
		for (unsigned i = 0; i < states.size(); ++i)
			core.vcpuState({ vm, i }, states[i], cpus[i]);
	}

	std::vector<Action> take() { return core.takeActions(); }

	static size_t count(const std::vector<Action> &actions, ActionKind kind, VcpuId who)
	{
		return static_cast<size_t>(std::count_if(actions.begin(), actions.end(), [&](const Action &a) {
			return a.kind == kind && a.who == who;
		}));
	}
	static size_t count(const std::vector<Action> &actions, ActionKind kind)
	{
		return static_cast<size_t>(std::count_if(actions.begin(), actions.end(),
							 [&](const Action &a) { return a.kind == kind; }));
	}
	static const Action *find(const std::vector<Action> &actions, ActionKind kind, VcpuId who)
	{
		for (const Action &a : actions)
			if (a.kind == kind && a.who == who)
				return &a;
		return nullptr;
	}
	// The result points into `actions`: a temporary (find(h.take(), ...)) would leave it dangling.
	static const Action *find(std::vector<Action> &&actions, ActionKind kind, VcpuId who) = delete;

	FakeClock clock;
	SchedCore core;
};

constexpr uint64_t kUs = 1'000;
constexpr uint64_t kMs = 1'000'000;

// A hint slot as a guest publishes it; waiting on nobody.
inline spindle_hint_slot hintSlot(uint32_t seq, uint32_t locksHeld)
{
	spindle_hint_slot slot{};
	slot.seq = seq;
	slot.locks_held = locksHeld;
	slot.waiting_on = SPINDLE_VCPU_NONE;
	return slot;
}

} // namespace spindle::sched::test

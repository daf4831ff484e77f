// Cost of one policy decision: a spin report handled by the pure core (decision, ledger, actions
// drained), and one scheduler tick, at 8, 64 and 512 vCPUs (VMs of 8 vCPUs, half of them
// runnable so co-boosts and express runs really happen; the clock advances 100 us per event so
// boosts expire and debts are repaid as they would be).

#include <benchmark/benchmark.h>

#include "sched/core.h"

namespace spindle::sched {
namespace {

class StepClock : public Clock
{
public:
	uint64_t nowNs() const override { return t_; }
	void advance(uint64_t ns) { t_ += ns; }

private:
	uint64_t t_ = 1'000'000'000;
};

struct Setup {
	StepClock clock;
	SchedCore core;
	unsigned vms;
	Setup(PolicyKind policy, unsigned vcpus) : core(options(policy), { 0, 1, 2, 3, 4, 5, 6, 7 }, clock), vms(vcpus / 8)
	{
		for (unsigned vm = 0; vm < vms; ++vm) {
			int id = core.addVm("vm" + std::to_string(vm), 8, nullptr);
			for (unsigned i = 0; i < 8; ++i)
				core.vcpuState({ id, i }, i % 2 ? VcpuState::Runnable : VcpuState::Running,
					       static_cast<int>(i % 8));
		}
	}
	static SchedulerOptions options(PolicyKind policy)
	{
		SchedulerOptions o;
		o.policy = policy;
		return o;
	}
};

void spinEvent(benchmark::State &state, PolicyKind policy)
{
	Setup s(policy, static_cast<unsigned>(state.range(0)));
	unsigned n = 0;
	for (auto _ : state) {
		int vm = static_cast<int>(n % s.vms);
		unsigned vcpu = (n / s.vms) % 8 & ~1u; // a running vCPU spins
		uint32_t waitsOn = policy == PolicyKind::Coboost ? kNoVcpu : vcpu + 1;
		s.core.spinDetected({ vm, vcpu }, SpinSource::Pv, waitsOn);
		s.core.expire();
		auto actions = s.core.takeActions();
		benchmark::DoNotOptimize(actions.data());
		s.clock.advance(100'000);
		++n;
	}
	state.SetItemsProcessed(state.iterations());
}

void tick(benchmark::State &state, PolicyKind policy)
{
	Setup s(policy, static_cast<unsigned>(state.range(0)));
	for (auto _ : state) {
		s.core.tick();
		auto actions = s.core.takeActions();
		benchmark::DoNotOptimize(actions.data());
		s.clock.advance(1'000'000);
	}
	state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(spinEvent, coboost, PolicyKind::Coboost)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(spinEvent, express, PolicyKind::Express)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(spinEvent, adaptive, PolicyKind::Adaptive)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(tick, extend, PolicyKind::Extend)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(tick, gang, PolicyKind::Gang)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(tick, adaptive, PolicyKind::Adaptive)->Arg(8)->Arg(64)->Arg(512);

} // namespace
} // namespace spindle::sched

BENCHMARK_MAIN();

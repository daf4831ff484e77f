// Fuzzes the scheduler's reading of guest hint slots. There is no pure validator of a slot on its
// own: the smallest pure entry that takes raw slot values is SchedCore::hintUpdate() (sched/core.h),
// and tick() reads the slots from the hint page itself. So this target drives a SchedCore (fake
// clock, every policy) with hostile slot contents, raw hintUpdate() calls (with any vCPU id), and
// the events around them.
//
// Contract (guest-kernels/README.md, section 8; sched/model.h): a hint is only a hint.
//   - hintUpdate() on an unknown or removed vCPU changes nothing; on a known one with a new seq it
//     stores seq, caps locks_held at kMaxLocksHeld, keeps waiting_on only when it names another
//     vCPU of the VM (else none), and counts one invalid hint per capped or dropped value; the
//     same seq again changes nothing; hintProgress grows by the seq advance;
//   - tick() leaves every active vCPU with a hint page holding its slot's seq and, when that seq
//     moved since the last reading, its values so validated (else the last reading's);
//   - at all times every vCPU's locksHeld <= kMaxLocksHeld and waitingOn is none or another vCPU
//     of its VM, and every action names a known vCPU (a move, a CPU of the pool).

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "guest-kernels/abi/spindle_abi.h"
#include "sched/core.h"
#include "tests/fuzz/fuzz.h"

using namespace spindle;
using namespace spindle::fuzz;
using namespace spindle::sched;

namespace {

class FakeClock final : public Clock
{
public:
	uint64_t nowNs() const override { return now; }
	uint64_t now = 1'000'000'000;
};

// The validated values the core should keep for a raw slot of vCPU `self` in a VM of `count`.
struct Validated {
	uint32_t locksHeld;
	uint32_t waitingOn;
	unsigned invalid;
};

Validated validate(uint32_t locksHeld, uint32_t waitingOn, unsigned self, size_t count)
{
	Validated v{ locksHeld, waitingOn, 0 };
	if (locksHeld > kMaxLocksHeld) {
		v.locksHeld = kMaxLocksHeld;
		++v.invalid;
	}
	if (waitingOn != kNoVcpu && (waitingOn >= count || waitingOn == self)) {
		v.waitingOn = kNoVcpu;
		++v.invalid;
	}
	return v;
}

// Raw values: often small and plausible, sometimes anything.
uint32_t rawValue(FuzzedDataProvider &in, uint32_t plausible)
{
	return in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, plausible) : in.ConsumeIntegral<uint32_t>();
}

class Driver
{
public:
	explicit Driver(FuzzedDataProvider &in)
	{
		static constexpr PolicyKind kPolicies[] = { PolicyKind::Cfs, PolicyKind::Yield, PolicyKind::Coboost,
							    PolicyKind::Extend, PolicyKind::Express, PolicyKind::Gang,
							    PolicyKind::Adaptive };
		SchedulerOptions options;
		options.policy = in.PickValueInArray(kPolicies);
		options.maxConcurrentBoosts = in.ConsumeIntegralInRange<uint32_t>(0, 3);
		const unsigned poolSize = in.ConsumeIntegralInRange<unsigned>(1, 4);
		for (unsigned cpu = 0; cpu < poolSize; ++cpu)
			pool_.push_back(static_cast<int>(cpu));
		core_ = std::make_unique<SchedCore>(options, pool_, clock_);
		const unsigned vms = in.ConsumeIntegralInRange<unsigned>(1, 3);
		for (unsigned i = 0; i < vms; ++i) {
			const unsigned vcpus = in.ConsumeIntegralInRange<unsigned>(1, 6);
			// Exactly one slot per vCPU: a read past the page is a heap overflow.
			pages_.push_back(in.ConsumeIntegralInRange(0, 4) == 0
						 ? nullptr
						 : std::make_unique<spindle_hint_slot[]>(vcpus));
			const int id = core_->addVm("vm" + std::to_string(i), vcpus, pages_.back().get());
			FUZZ_REQUIRE(id == static_cast<int>(i));
		}
	}

	void step(FuzzedDataProvider &in)
	{
		switch (in.ConsumeIntegralInRange(0, 9)) {
		case 0:
		case 1:
			writeSlot(in);
			break;
		case 2:
		case 3:
			rawHintUpdate(in);
			break;
		case 4:
			tick();
			break;
		case 5:
			clock_.now += in.ConsumeIntegralInRange<uint64_t>(0, 20'000'000);
			core_->expire();
			break;
		case 6: {
			static constexpr VcpuState kStates[] = { VcpuState::Running, VcpuState::Runnable, VcpuState::Halted };
			core_->vcpuState(anyVcpu(in), in.PickValueInArray(kStates), in.ConsumeIntegralInRange(-1, 4));
			break;
		}
		case 7:
			core_->spinDetected(anyVcpu(in), SpinSource::Ple, rawValue(in, 8));
			break;
		case 8:
			core_->longSpin(anyVcpu(in), rawValue(in, 8), in.ConsumeIntegral<uint32_t>(), rawValue(in, 3));
			break;
		default:
			if (in.ConsumeIntegralInRange(0, 7) == 0)
				core_->removeVm(in.ConsumeIntegralInRange(-1, static_cast<int>(pages_.size())));
			else
				core_->cpuTime(anyVcpu(in), in.ConsumeIntegralInRange<uint64_t>(0, 2'000'000));
			break;
		}
		requireInvariants();
	}

private:
	// Any id, including ones past the end and of no VM at all.
	VcpuId anyVcpu(FuzzedDataProvider &in)
	{
		return { in.ConsumeIntegralInRange(-1, static_cast<int>(pages_.size())), in.ConsumeIntegralInRange(0u, 7u) };
	}

	void writeSlot(FuzzedDataProvider &in)
	{
		const size_t vm = in.ConsumeIntegralInRange<size_t>(0, pages_.size() - 1);
		if (!pages_[vm])
			return;
		spindle_hint_slot &slot = pages_[vm][in.ConsumeIntegralInRange<size_t>(0, core_->vm(static_cast<int>(vm)).vcpus.size() - 1)];
		slot.seq = in.ConsumeBool() ? slot.seq + 1 : in.ConsumeIntegral<uint32_t>();
		slot.locks_held = rawValue(in, kMaxLocksHeld + 1);
		slot.waiting_on = in.ConsumeBool() ? kNoVcpu : rawValue(in, 7);
		slot.waiting_lock = in.ConsumeIntegral<uint32_t>();
	}

	void rawHintUpdate(FuzzedDataProvider &in)
	{
		const VcpuId who = anyVcpu(in);
		const uint32_t seq = rawValue(in, 4), locks = rawValue(in, kMaxLocksHeld + 1), waiting = rawValue(in, 7);
		if (!core_->valid(who) || !core_->vm(who.vm).active) {
			core_->hintUpdate(who, seq, locks, waiting); // must not touch anything, or crash
			return;
		}
		const VcpuModel before = core_->vcpu(who);
		const uint64_t progressBefore = core_->vm(who.vm).hintProgress;
		core_->hintUpdate(who, seq, locks, waiting);
		const VcpuModel &after = core_->vcpu(who);
		if (before.hintSeen && before.hintSeq == seq) {
			FUZZ_REQUIRE(after.locksHeld == before.locksHeld && after.waitingOn == before.waitingOn);
			FUZZ_REQUIRE(after.counters.hintsInvalid == before.counters.hintsInvalid);
			FUZZ_REQUIRE(core_->vm(who.vm).hintProgress == progressBefore);
			return;
		}
		const Validated expected = validate(locks, waiting, who.vcpu, core_->vm(who.vm).vcpus.size());
		FUZZ_REQUIRE(after.hintSeen && after.hintSeq == seq);
		FUZZ_REQUIRE(after.locksHeld == expected.locksHeld && after.waitingOn == expected.waitingOn);
		FUZZ_REQUIRE(after.counters.hintsInvalid == before.counters.hintsInvalid + expected.invalid);
		const uint64_t advance = before.hintSeen ? static_cast<uint32_t>(seq - before.hintSeq) : 0;
		FUZZ_REQUIRE(core_->vm(who.vm).hintProgress == progressBefore + advance);
	}

	void tick()
	{
		std::vector<std::vector<VcpuModel>> before;
		for (size_t id = 0; id < core_->vmCount(); ++id)
			before.push_back(core_->vm(static_cast<int>(id)).vcpus);
		clock_.now += core_->options().tickNs;
		core_->tick();
		for (size_t id = 0; id < pages_.size(); ++id) {
			const VmModel &vm = core_->vm(static_cast<int>(id));
			if (!vm.active || !pages_[id])
				continue;
			for (unsigned i = 0; i < vm.vcpus.size(); ++i) {
				const spindle_hint_slot &slot = pages_[id][i];
				const VcpuModel &v = vm.vcpus[i], &was = before[id][i];
				FUZZ_REQUIRE(v.hintSeen && v.hintSeq == slot.seq);
				if (was.hintSeen && was.hintSeq == slot.seq) {
					// The same seq: the slot did not move, so what was read last still stands.
					FUZZ_REQUIRE(v.locksHeld == was.locksHeld && v.waitingOn == was.waitingOn);
					continue;
				}
				const Validated expected = validate(slot.locks_held, slot.waiting_on, i, vm.vcpus.size());
				FUZZ_REQUIRE(v.locksHeld == expected.locksHeld && v.waitingOn == expected.waitingOn);
			}
		}
	}

	void requireInvariants()
	{
		for (size_t id = 0; id < core_->vmCount(); ++id) {
			const VmModel &vm = core_->vm(static_cast<int>(id));
			for (unsigned i = 0; i < vm.vcpus.size(); ++i) {
				const VcpuModel &v = vm.vcpus[i];
				FUZZ_REQUIRE(v.locksHeld <= kMaxLocksHeld);
				FUZZ_REQUIRE(v.waitingOn == kNoVcpu || (v.waitingOn < vm.vcpus.size() && v.waitingOn != i));
			}
		}
		for (const Action &action : core_->takeActions()) {
			FUZZ_REQUIRE(core_->valid(action.who));
			if (action.kind == ActionKind::Move)
				FUZZ_REQUIRE(std::find(pool_.begin(), pool_.end(), action.cpu) != pool_.end());
		}
		core_->takeTrace();
	}

	FakeClock clock_;
	std::vector<int> pool_;
	std::vector<std::unique_ptr<spindle_hint_slot[]>> pages_;
	std::unique_ptr<SchedCore> core_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider in(data, size);
	Driver driver(in);
	while (in.remaining_bytes() > 0)
		driver.step(in);
	return 0;
}

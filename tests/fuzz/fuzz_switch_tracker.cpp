// Fuzzes the switch tracker (sched/switch_observer.h), the state machine that turns the kernel's
// sched_switch and sched_wakeup records into vCPU thread states. The records come from the
// kernel, but they go missing (on our PVM host every one while CPU 1 idles), arrive for threads
// the tracker never heard of, and name any CPU a garbled or future format could give; the
// tracker's page of /proc re-reads (resync, setRuntime) lands between them at any time.
//
// Contract:
//   - any sequence of track, untrack, switches, wake-ups, resyncs, CPU-time updates and suspect
//     takes is handled (no crash, nothing read or written out of bounds);
//   - a thread believed running on a CPU is tracked, running, and on that CPU; no thread is
//     believed running on a negative CPU or one past the tracker's bound;
//   - an untracked thread has no view, no doubt and nothing unverified, and is nowhere believed
//     running; suspects are thread ids (positive).

#include <fuzzer/FuzzedDataProvider.h>

#include <set>

#include "sched/switch_observer.h"
#include "tests/fuzz/fuzz.h"

using namespace spindle::sched;

namespace {

constexpr pid_t kMaxTid = 12;   // few ids, so events meet the tracked threads often
constexpr int kCpusSeen = 6;    // the CPUs checked after each step
constexpr int kCpuLimit = SwitchTracker::kMaxCpus;

int anyCpu(FuzzedDataProvider &in)
{
	switch (in.ConsumeIntegralInRange<int>(0, 7)) {
	case 0:
		return in.ConsumeIntegral<int>(); // anything a record could claim
	case 1:
		return kCpuLimit - 1 + in.ConsumeIntegralInRange<int>(0, 2);
	default:
		return in.ConsumeIntegralInRange<int>(-1, kCpusSeen - 1);
	}
}

pid_t anyTid(FuzzedDataProvider &in)
{
	return in.ConsumeIntegralInRange<pid_t>(-1, kMaxTid);
}

VcpuState anyState(FuzzedDataProvider &in)
{
	return static_cast<VcpuState>(in.ConsumeIntegralInRange<int>(0, 2));
}

void checkInvariants(const SwitchTracker &tracker, const std::set<pid_t> &tracked, uint64_t nowNs)
{
	for (int cpu = -1; cpu <= kCpusSeen; ++cpu) {
		auto running = tracker.runningOn(cpu);
		if (!running)
			continue;
		FUZZ_REQUIRE(cpu >= 0);
		FUZZ_REQUIRE(tracked.count(*running) == 1);
		auto view = tracker.view(*running, nowNs);
		FUZZ_REQUIRE(view.has_value());
		FUZZ_REQUIRE(view->state == VcpuState::Running);
		FUZZ_REQUIRE(view->cpu == cpu);
	}
	FUZZ_REQUIRE(!tracker.runningOn(kCpuLimit));
	for (pid_t tid = -1; tid <= kMaxTid; ++tid) {
		if (tracked.count(tid))
			continue;
		FUZZ_REQUIRE(!tracker.view(tid, nowNs).has_value());
		FUZZ_REQUIRE(!tracker.stateInDoubt(tid));
		FUZZ_REQUIRE(tracker.unverifiedNs(tid) == 0);
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider in(data, size);
	SwitchTracker tracker;
	if (in.ConsumeBool())
		tracker.setObserver(in.ConsumeIntegralInRange<pid_t>(1, kMaxTid));
	std::set<pid_t> tracked;
	uint64_t now = 1'000'000;
	while (in.remaining_bytes() > 0) {
		// Time mostly moves on, by up to 3 ms (past the budget in a few steps), and now and
		// then an event is older than the last one (rings are merged, /proc reads stamped).
		const uint64_t step = in.ConsumeIntegralInRange<uint64_t>(0, 3'000'000);
		now = in.ConsumeIntegralInRange<int>(0, 9) == 0 ? now - std::min(now, step) : now + step;
		switch (in.ConsumeIntegralInRange<int>(0, 9)) {
		case 0: {
			const pid_t tid = anyTid(in);
			tracker.track(tid, anyState(in), anyCpu(in), now);
			if (tid > 0)
				tracked.insert(tid);
			break;
		}
		case 1: {
			const pid_t tid = anyTid(in);
			tracker.untrack(tid);
			tracked.erase(tid);
			break;
		}
		case 2:
			tracker.apply(WakeupEvent{ now, anyTid(in), anyCpu(in) });
			break;
		case 3:
			tracker.resync(anyTid(in), anyState(in), anyCpu(in), now,
				       in.ConsumeBool() ? std::optional<uint64_t>(in.ConsumeIntegral<uint32_t>()) : std::nullopt);
			break;
		case 4:
			tracker.setRuntime(anyTid(in), in.ConsumeIntegral<uint32_t>(), now);
			break;
		case 5:
			for (pid_t tid : tracker.takeSuspects())
				FUZZ_REQUIRE(tid > 0);
			break;
		case 6:
			tracker.sawRunnable(anyTid(in), anyCpu(in));
			break;
		default: { // switches are most of what the kernel sends
			SwitchEvent event;
			event.timeNs = now;
			event.cpu = anyCpu(in);
			event.prevPid = anyTid(in);
			event.prevRunnable = in.ConsumeBool();
			event.nextPid = anyTid(in);
			tracker.apply(event);
			break;
		}
		}
		checkInvariants(tracker, tracked, now);
	}
	return 0;
}

// lockbench: the lock micro-benchmark. Every vCPU runs the same loop for a fixed wall time:
//   mode=lock     acquire, critical section, release, think; latency = acquisition time
//   mode=barrier  think, sense-reversing barrier; latency = barrier wait
//   mode=cpu      fixed-size computation units, no shared state at all
// then reports per-vCPU results, and vCPU 0 reports the VM result and exits. With idle= and
// busy= (lock and cpu modes), each vCPU alternates busy phases of that loop with idle phases
// blocked in PV WAITs, so the VM leaves CPUs to others.
// Parameters: see params.h and guest-kernels/README.md.

#include "guest-kernels/lockbench/histogram.h"
#include "guest-kernels/lockbench/params.h"
#include "guest-kernels/lockbench/work_unit.h"
#include "guest-kernels/locks/mcs.h"
#include "guest-kernels/locks/pvhalt.h"
#include "guest-kernels/locks/tas.h"
#include "guest-kernels/locks/ticket.h"
#include "guest-kernels/runtime/runtime.h"

namespace spindle::guest {

namespace {

using lockbench::LatencyHistogram;
using lockbench::Params;
using P = GuestLockPlatform;

// The id the benchmark lock reports in hints and long-spin notifications.
constexpr uint32_t kBenchLockId = 1;

// One of each kind, chosen at run time; all constant-initialised (no constructors run here).
constinit locks::TicketLock<P> g_ticket{ kBenchLockId };
constinit locks::TasLock<P> g_tas{ kBenchLockId };
constinit locks::TtasLock<P> g_ttas{ kBenchLockId };
constinit locks::McsLock<P> g_mcs{ kBenchLockId };
constinit locks::QspinLock<P> g_qspin{ kBenchLockId };
constinit locks::PvTicketLock<P> g_pvticket{ kBenchLockId };
constinit locks::PvHaltLock<P> g_pvhalt{ kBenchLockId };

// Start and end of the run, for all vCPUs.
constinit Barrier g_phase;
// The barrier that mode=barrier measures.
constinit Barrier g_benchBarrier;

// Written by the last vCPU through the start barrier, read by all after it.
constinit uint64_t g_startTsc = 0;
constinit uint64_t g_endTsc = 0;
// Written by the last vCPU through the end barrier.
constinit uint64_t g_stoppedTsc = 0;

// Incremented, deliberately NOT atomically, only under mutual exclusion (inside the critical
// section, or in the barrier's completion); it must end equal to the total of operations.
constinit uint64_t g_sharedCounter = 0;
constinit uint64_t g_totalOps = 0;
// WAIT records sent by all vCPUs (pvhalt's waits and idle phases), for the summary line.
constinit uint64_t g_totalWaits = 0;
// mode=barrier: set by the completion of the round that should be the last.
constinit uint32_t g_barrierStop = 0;
// vCPUs that have sent their per-vCPU result.
constinit uint32_t g_reported = 0;

struct VcpuRun {
	uint32_t cpu = 0;
	uint32_t vcpus = 0;
	TscClock clock = {};
	uint64_t csTicks = 0;
	uint64_t thinkTicks = 0;
	uint64_t busyTicks = 0;
	uint64_t idleTicks = 0; // 0: never idle
	uint32_t phaseSense = 0;

	uint64_t ops = 0;
	uint64_t spins = 0;
	LatencyHistogram latency;

	void recordLatency(uint64_t from, uint64_t to) { latency.record(clock.toNs(to > from ? to - from : 0)); }
};

// Calls op(tscBefore) until the run ends. In a sleepy run, after each busy phase of busyTicks
// the vCPU idles for idleTicks (or until the end) off the CPU. Phases change only between
// operations, so a vCPU never idles holding the lock. Each vCPU keeps its own phases, from the
// start barrier on; they drift apart as the vCPUs' operations take different times.
template<typename Op>
void runUntilEnd(VcpuRun &run, Op &&op)
{
	uint64_t end = __atomic_load_n(&g_endTsc, __ATOMIC_RELAXED);
	uint64_t busyEnd = run.idleTicks != 0 ? rdtsc() + run.busyTicks : UINT64_MAX;
	for (;;) {
		uint64_t before = rdtsc();
		if (before >= end)
			break;
		if (before >= busyEnd) {
			idleUntil(run.cpu, run.clock, before + run.idleTicks < end ? before + run.idleTicks : end);
			busyEnd = rdtsc() + run.busyTicks;
			continue;
		}
		op(before);
	}
}

template<typename Lock>
void runLockMode(Lock &lock, VcpuRun &run)
{
	runUntilEnd(run, [&lock, &run](uint64_t before) {
		run.spins += lock.acquire(run.cpu);
		uint64_t acquired = rdtsc();
		run.recordLatency(before, acquired);
		// A plain load and store: a broken lock shows up as lost increments.
		g_sharedCounter = g_sharedCounter + 1;
		busyUntil(acquired + run.csTicks);
		lock.release(run.cpu);
		run.ops++;
		busyUntil(rdtsc() + run.thinkTicks);
	});
}

void runBarrierMode(VcpuRun &run)
{
	uint32_t sense = 0;
	uint64_t end = __atomic_load_n(&g_endTsc, __ATOMIC_RELAXED);
	uint32_t vcpus = run.vcpus;
	// All vCPUs must agree on the last round, or some would wait forever for the others: the
	// last arriver of each round decides for everyone, before releasing them.
	auto completion = [end, vcpus] {
		g_sharedCounter = g_sharedCounter + vcpus;
		if (rdtsc() >= end)
			__atomic_store_n(&g_barrierStop, 1, __ATOMIC_RELAXED);
	};
	do {
		busyUntil(rdtsc() + run.thinkTicks);
		uint64_t before = rdtsc();
		run.spins += g_benchBarrier.wait(run.cpu, run.vcpus, sense, completion);
		run.recordLatency(before, rdtsc());
		run.ops++;
	} while (!__atomic_load_n(&g_barrierStop, __ATOMIC_RELAXED));
}

void runCpuMode(VcpuRun &run)
{
	uint64_t x = run.cpu + 1;
	runUntilEnd(run, [&x, &run](uint64_t before) {
		x = lockbench::workUnit(x);
		run.recordLatency(before, rdtsc());
		run.ops++;
	});
	asm volatile("" : : "r"(x));
}

void runMode(const Params &params, VcpuRun &run)
{
	switch (params.mode) {
	case SPINDLE_MODE_BARRIER:
		return runBarrierMode(run);
	case SPINDLE_MODE_CPU:
		return runCpuMode(run);
	default:
		break;
	}
	switch (params.lock) {
	case SPINDLE_LOCK_TAS:
		return runLockMode(g_tas, run);
	case SPINDLE_LOCK_TTAS:
		return runLockMode(g_ttas, run);
	case SPINDLE_LOCK_MCS:
		return runLockMode(g_mcs, run);
	case SPINDLE_LOCK_QSPIN:
		return runLockMode(g_qspin, run);
	case SPINDLE_LOCK_PVTICKET:
		return runLockMode(g_pvticket, run);
	case SPINDLE_LOCK_PVHALT:
		return runLockMode(g_pvhalt, run);
	default:
		return runLockMode(g_ticket, run);
	}
}

// Results name a lock only in lock mode.
uint32_t reportedLock(const Params &params)
{
	return params.mode == SPINDLE_MODE_LOCK ? params.lock : uint32_t{ SPINDLE_LOCK_NONE };
}

void sendVcpuResult(const Params &params, const VcpuRun &run)
{
	spindle_pv_result_vcpu result = {};
	result.mode = params.mode;
	result.ops = run.ops;
	result.spin_iters = run.spins;
	result.long_spins = longSpins(run.cpu);
	for (uint32_t i = 0; i < SPINDLE_LATENCY_BUCKETS; i++)
		result.latency_ns_hist[i] = run.latency.counts[i];
	pvResultVcpu(run.cpu, result);
}

[[noreturn]] void finishVm(const Params &params, const VcpuRun &run)
{
	uint64_t total = __atomic_load_n(&g_totalOps, __ATOMIC_RELAXED);
	uint64_t durationNs = run.clock.toNs(g_stoppedTsc - g_startTsc);

	spindle_pv_result_vm result = {};
	result.mode = params.mode;
	result.lock = reportedLock(params);
	result.duration_ns = durationNs;
	result.total_ops = total;
	result.shared_counter = g_sharedCounter;
	result.cs_ns = params.csNs;
	result.think_ns = params.thinkNs;
	pvResultVm(run.cpu, result);

	print("lockbench: mode=%s lock=%s vcpus=%u ops=%lu shared=%lu duration=%luns waits=%lu\n",
	      lockbench::modeName(params.mode), lockbench::lockName(result.lock), run.vcpus, total,
	      g_sharedCounter, durationNs, __atomic_load_n(&g_totalWaits, __ATOMIC_RELAXED));

	// cpu mode shares nothing, so it has nothing to check.
	if (params.mode != SPINDLE_MODE_CPU && g_sharedCounter != total)
		failVm(run.cpu, 1, "lockbench: mutual exclusion violated: shared counter %lu != %lu operations",
		       g_sharedCounter, total);
	exitVm(run.cpu, 0);
}

} // namespace

void guestMain(uint32_t cpu, const spindle_boot_info &boot)
{
	// Every vCPU parses the same text and reaches the same verdict; only vCPU 0 reports it.
	Params params;
	char error[SPINDLE_PV_ERROR_TEXT_MAX];
	if (!lockbench::parseParams(boot.args, params, error, sizeof(error))) {
		if (cpu == 0)
			failVm(cpu, 2, "%s", error);
		return;
	}
	VcpuRun run;
	run.cpu = cpu;
	run.vcpus = boot.vcpu_count;
	if (!tscClock(run.clock)) {
		if (cpu == 0)
			failVm(cpu, 2, "lockbench: boot info has no TSC frequency (tsc_khz is 0)");
		return;
	}
	run.csTicks = run.clock.fromNs(params.csNs);
	run.thinkTicks = run.clock.fromNs(params.thinkNs);
	run.busyTicks = run.clock.fromNs(params.busyNs);
	run.idleTicks = params.sleepy() ? run.clock.fromNs(params.idleNs) : 0;
	uint64_t durationTicks = run.clock.fromNs(params.durationNs);

	if (cpu == 0)
		print("lockbench: mode=%s lock=%s cs=%luns think=%luns duration=%luns idle=%luns busy=%luns vcpus=%u\n",
		      lockbench::modeName(params.mode), lockbench::lockName(reportedLock(params)), params.csNs,
		      params.thinkNs, params.durationNs, params.idleNs, params.busyNs, boot.vcpu_count);

	// The clock starts when the last vCPU is in: a vCPU that boots late does not shorten the run.
	g_phase.wait(cpu, run.vcpus, run.phaseSense, [durationTicks] {
		g_startTsc = rdtsc();
		__atomic_store_n(&g_endTsc, g_startTsc + durationTicks, __ATOMIC_RELAXED);
	});

	runMode(params, run);

	__atomic_add_fetch(&g_totalOps, run.ops, __ATOMIC_RELAXED);
	__atomic_add_fetch(&g_totalWaits, pvWaits(cpu), __ATOMIC_RELAXED);
	g_phase.wait(cpu, run.vcpus, run.phaseSense, [] { g_stoppedTsc = rdtsc(); });

	sendVcpuResult(params, run);
	arrive(g_reported);
	if (cpu != 0)
		return;
	// EXIT stops the VM: wait until every per-vCPU result is in.
	waitForCount(g_reported, run.vcpus);
	finishVm(params, run);
}

} // namespace spindle::guest

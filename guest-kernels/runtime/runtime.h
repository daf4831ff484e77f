#pragma once

// The guest runtime: entry, boot-info validation, serial console, PV records, time, and the lock
// platform. Each guest defines guestMain(); the runtime's _start calls it on every vCPU.
//
// Every function takes the caller's vCPU index explicitly (the guests set up no per-CPU
// register); `cpu` is always the index the VMM passed in RDI, already checked < vcpu_count.

#include <stddef.h>
#include <stdint.h>

#include "guest-kernels/abi/spindle_abi.h"
#include "guest-kernels/locks/barrier.h"
#include "guest-kernels/runtime/arch.h"
#include "guest-kernels/runtime/tsc.h"

namespace spindle::guest {

// Defined by each guest. Runs on every vCPU after the runtime validated the boot info and sent
// READY. Returning halts the vCPU.
void guestMain(uint32_t cpu, const spindle_boot_info &boot);

// ---- Console (the 16550's THR, by MMIO). One call = one line: the whole text goes out under a
// lock, so lines from different vCPUs never interleave. Longer than 255 bytes is truncated.
__attribute__((format(printf, 1, 2))) void print(const char *fmt, ...);

// ---- PV records, built in this vCPU's mailbox and submitted with a 32-bit write to the PV
// doorbell (MMIO, so the same code runs in ring 0 and ring 3).
void pvReady(uint32_t cpu);
void pvExit(uint32_t cpu, int32_t code);
void pvError(uint32_t cpu, const char *text);
void pvLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins);
void pvResultVcpu(uint32_t cpu, const spindle_pv_result_vcpu &result);
void pvResultVm(uint32_t cpu, const spindle_pv_result_vm &result);
// WAIT: asks the host to park this vCPU while *word == expected (word null: no condition), for
// at most timeoutNs (0: the host's cap). May return at any time, at once included (a pending
// kick, the word changed, a host that does not park): the caller re-checks its condition.
// `word` must lie in guest RAM (GPA == address: the guests run identity-mapped).
void pvWait(uint32_t cpu, const volatile uint32_t *word, uint32_t expected, uint64_t timeoutNs);
// KICK: wakes vCPU `target` if it waits, else makes its next WAIT return at once.
void pvKick(uint32_t cpu, uint32_t target);

// Prints "error: <text>" to the console, sends it as a PV error, sends EXIT with `code` and
// halts. For a guest that rejects its input.
[[noreturn]] __attribute__((format(printf, 3, 4))) void failVm(uint32_t cpu, int32_t code, const char *fmt,
								    ...);

// Sends EXIT with `code` and halts this vCPU (the VMM stops the VM on EXIT; the HALT record is a
// backstop).
[[noreturn]] void exitVm(uint32_t cpu, int32_t code);

// ---- Time. False if boot_info.tsc_khz is 0 (then `clock` is untouched).
bool tscClock(TscClock &clock);

// Busy-waits, without PAUSE, until the TSC reaches `until`: this is the guest "working" (a
// critical section or think time), which Pause-Loop-Exiting must not mistake for spinning.
inline void busyUntil(uint64_t until)
{
	while (rdtsc() < until) {
	}
}

// Leaves the CPU until the TSC reaches `until`, by WAITs with no condition (the host parks the
// vCPU; kicks and early returns only make it wait again). Where WAITs return at once (a host
// that does not park), it busy-waits a little between them, so such a host sees at most one
// WAIT per kMinWaitGapNs rather than a storm of exits.
void idleUntil(uint32_t cpu, const TscClock &clock, uint64_t until);
inline constexpr uint64_t kMinWaitGapNs = 20'000;

// ---- Lock platform for guest code (see guest-kernels/locks/spin_wait.h).
struct GuestLockPlatform {
	static void pause(uint32_t) { cpuPause(); }
	static uint32_t spinThreshold();
	static spindle_hint_slot *hintSlot(uint32_t cpu);
	// Sends SPINDLE_PV_LONG_SPIN and counts it for longSpins().
	static void notifyLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins);
	// WAIT and KICK records, counted for pvWaits().
	static void waitOn(uint32_t cpu, const volatile uint32_t *word, uint32_t expected, uint64_t timeoutNs)
	{
		pvWait(cpu, word, expected, timeoutNs);
	}
	static void kick(uint32_t cpu, uint32_t target) { pvKick(cpu, target); }
};

// WAIT records this vCPU has sent so far (locks and idle phases).
uint64_t pvWaits(uint32_t cpu);

// Long-spin notifications this vCPU has sent so far.
uint64_t longSpins(uint32_t cpu);

using Barrier = locks::SenseBarrier<GuestLockPlatform>;

// A one-shot arrival count: returns how many callers (this one included) have arrived.
inline uint32_t arrive(uint32_t &counter)
{
	return __atomic_add_fetch(&counter, 1, __ATOMIC_ACQ_REL);
}

// Waits until `counter` reaches `target`.
inline void waitForCount(const uint32_t &counter, uint32_t target)
{
	while (__atomic_load_n(&counter, __ATOMIC_ACQUIRE) < target)
		cpuPause();
}

} // namespace spindle::guest

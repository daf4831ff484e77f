#pragma once

// Measurements of what this host's KVM really does, with tiny one-vCPU guests, for
// `spindle check`, the tests' capability probes and `--guest-mode auto` on unknown backends:
//
// - guest speed: a two-instruction loop (inc; jmp) runs for a fixed wall time in ring 0 or
//   ring 3; instructions per microsecond tell native execution (thousands) from emulation
//   (PVM runs ring-0 code at about one per microsecond, TCG at tens to hundreds);
// - PAUSE exits: a PAUSE loop runs for a fixed wall time while the kvm:kvm_exit tracepoint,
//   filtered to the PAUSE exit reason, counts on the vCPU thread, exactly as the PLE detector
//   counts: zero exits for many PAUSEs means spin detection by PLE cannot work here.
//
// Each probe builds its own VM with Spindle's boot state for the mode and tears it down.

#include <cstdint>
#include <string>

#include "common/result.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/kvm_system.h"

namespace spindle {

struct GuestSpeed {
	uint64_t iterations = 0; // loop iterations the guest completed
	double seconds = 0;      // wall time the vCPU was inside KVM_RUN for them
	double instructionsPerUs() const { return seconds > 0 ? 2.0 * static_cast<double>(iterations) / (seconds * 1e6) : 0; }
};

// Below this rate, guest code is emulated rather than run by the CPU. The loop retires about
// one iteration (two instructions) per cycle natively: thousands per microsecond on any CPU of
// the last decade (8,900/us measured in ring 3 on PVM); QEMU's TCG manages about 150-250 and
// PVM's ring-0 emulator about 1.5.
constexpr double kNativeInstructionsPerUs = 1000.0;

Result<GuestSpeed> measureGuestSpeed(const KvmSystem &kvm, GuestMode mode, uint64_t durationNs = 20'000'000);

struct PauseExits {
	uint64_t pauses = 0; // PAUSEs the guest executed
	uint64_t exits = 0;  // kvm:kvm_exit events with the PAUSE exit reason on its thread
};

// tracepointId and filter as for sched::PleCounter (sched/ple.h).
Result<PauseExits> measurePauseExits(const KvmSystem &kvm, GuestMode mode, uint64_t tracepointId,
				     const std::string &filter, uint64_t durationNs = 50'000'000);

} // namespace spindle

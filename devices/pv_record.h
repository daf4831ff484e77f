#pragma once

// Decoding of Spindle PV records (guest-kernels/abi/spindle_abi.h). Pure: it takes a copy of the
// mailbox bytes and the length the guest announced, and returns a validated record or a reason.
// The guest is hostile: every field is checked, nothing is trusted for size or indexing.

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "common/result.h"
#include "spindle_abi.h"

namespace spindle {

struct PvReady {};
struct PvHalt {}; // the vCPU is done, as after HLT with interrupts off
struct PvExit {
	int32_t code;
};
struct PvGuestError {
	std::string text;
};
struct PvLongSpin {
	uint32_t lockId;
	uint32_t waitsOn; // SPINDLE_VCPU_NONE or < vcpuCount
	uint64_t spins;
};
struct PvResultVcpu {
	spindle_pv_result_vcpu raw;
};
struct PvResultVm {
	spindle_pv_result_vm raw;
};
// Park this vCPU (see spindle_pv_wait). Validated: wordGpa is 0 or a 4-byte aligned u32 inside
// guest RAM and outside the MMIO hole; timeoutNs is already capped to SPINDLE_PV_WAIT_MAX_NS
// (0 became the cap), so the host never sees an unbounded wait.
struct PvWait {
	uint64_t wordGpa; // 0: no condition
	uint32_t expected;
	uint64_t timeoutNs; // 1 .. SPINDLE_PV_WAIT_MAX_NS
};
// Wake `vcpu` (< vcpuCount, validated).
struct PvKick {
	uint32_t vcpu;
};

using PvRecord = std::variant<PvReady, PvExit, PvGuestError, PvLongSpin, PvResultVcpu, PvResultVm, PvHalt,
			      PvWait, PvKick>;

// What the decoder validates indices and addresses against.
struct PvLimits {
	unsigned vcpuCount = 0;
	// Bytes of guest RAM from GPA 0 (the MMIO hole included in the count, as in boot info's
	// mem_size). 0 = unknown: then no WAIT word address is valid, so a WAIT with a condition is
	// refused rather than trusted.
	uint64_t ramBytes = 0;
};

// mailbox: the bytes copied out of the vCPU's mailbox (SPINDLE_MAILBOX_SIZE of them);
// announcedLength: the value of the guest's OUT (or MMIO write).
Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength, const PvLimits &limits);

// The same without the RAM size, for callers that have not been given it: a WAIT with a word
// address is refused (see PvLimits::ramBytes). Prefer the PvLimits form.
Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength,
				unsigned vcpuCount);

// Whether [gpa, gpa + 4) is a naturally aligned u32 of guest RAM that the host may read for a
// WAIT condition: not 0, 4-byte aligned, below ramBytes, and not in the MMIO hole (no memory
// there, only devices). Empty if so, else why not.
std::string checkWaitWordGpa(uint64_t gpa, uint64_t ramBytes);

} // namespace spindle

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

using PvRecord = std::variant<PvReady, PvExit, PvGuestError, PvLongSpin, PvResultVcpu, PvResultVm, PvHalt>;

// mailbox: the bytes copied out of the vCPU's mailbox (SPINDLE_MAILBOX_SIZE of them);
// announcedLength: the value of the guest's OUT; vcpuCount: to validate vCPU indices.
Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength,
				unsigned vcpuCount);

} // namespace spindle

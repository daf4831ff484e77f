#pragma once

// The documented limits of a decoded PV record (guest-kernels/README.md, section 6), checked by
// the PV record target and by the bus target's record sink alike.

#include <cstring>
#include <variant>

#include "devices/pv_record.h"
#include "tests/fuzz/fuzz.h"

namespace spindle::fuzz {

inline bool isPrintableText(char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

inline void requireRecordLimits(const PvRecord &record, unsigned vcpuCount)
{
	if (const auto *exit = std::get_if<PvExit>(&record)) {
		FUZZ_REQUIRE(exit->code >= 0 && exit->code <= 255);
	} else if (const auto *error = std::get_if<PvGuestError>(&record)) {
		FUZZ_REQUIRE(error->text.size() < SPINDLE_PV_ERROR_TEXT_MAX);
		for (char c : error->text)
			FUZZ_REQUIRE(isPrintableText(c));
	} else if (const auto *spin = std::get_if<PvLongSpin>(&record)) {
		FUZZ_REQUIRE(spin->waitsOn == SPINDLE_VCPU_NONE || spin->waitsOn < vcpuCount);
	} else if (const auto *vcpu = std::get_if<PvResultVcpu>(&record)) {
		FUZZ_REQUIRE(vcpu->raw.mode >= SPINDLE_MODE_LOCK && vcpu->raw.mode <= SPINDLE_MODE_CPU);
	} else if (const auto *vm = std::get_if<PvResultVm>(&record)) {
		FUZZ_REQUIRE(vm->raw.mode >= SPINDLE_MODE_LOCK && vm->raw.mode <= SPINDLE_MODE_CPU);
		FUZZ_REQUIRE(vm->raw.lock <= SPINDLE_LOCK_KIND_MAX);
		FUZZ_REQUIRE(vm->raw.duration_ns > 0);
	} else if (const auto *wait = std::get_if<PvWait>(&record)) {
		FUZZ_REQUIRE(wait->timeoutNs >= 1 && wait->timeoutNs <= SPINDLE_PV_WAIT_MAX_NS);
		FUZZ_REQUIRE(wait->wordGpa % 4 == 0);
	} else if (const auto *kick = std::get_if<PvKick>(&record)) {
		FUZZ_REQUIRE(kick->vcpu < vcpuCount);
	} else {
		FUZZ_REQUIRE(std::holds_alternative<PvReady>(record) || std::holds_alternative<PvHalt>(record));
	}
}

} // namespace spindle::fuzz

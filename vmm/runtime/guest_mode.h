#pragma once

// Which CPL a VM boots at. Pure: the choice from the command line, the KVM backend, and what the
// guest image declares (its Spindle ELF note), so every rule is unit-tested.
//
// - ring0 / ring3: as asked, except that an image declaring only ring 3 is not booted in ring 0
//   (it said it cannot run there); an image that does not declare ring 3 may be forced there,
//   with a warning.
// - auto: ring 3 where ring-0 code would be emulated (PVM; or an unknown backend whose
//   calibration found ring-0 code emulated) and the image declares ring 3; ring 0 otherwise,
//   where hardware PLE sees spinning (Intel counts PAUSE at CPL 0 only) and where an image
//   written for the version 1 ABI keeps booting unchanged.

#include <cstdint>
#include <string>

#include "common/result.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/backend.h"

namespace spindle {

// What the command line asks for (--guest-mode, guest-mode= in --vm).
enum class GuestModeChoice { Auto, Ring0, Ring3 };
Result<GuestModeChoice> parseGuestModeChoice(const std::string &text);

struct GuestModeDecision {
	GuestMode mode = GuestMode::Ring0;
	std::string reason;  // one phrase, for --stats and the metrics
	std::string warning; // non-empty: say it (once) before the run
};

// imageModes: SPINDLE_GUEST_MODE_F_* from the image (0: no note, a ring-0 guest).
// ring0Emulated: only consulted for KvmBackend::Unknown (a calibration's verdict).
Result<GuestModeDecision> chooseGuestMode(GuestModeChoice choice, KvmBackend backend, uint32_t imageModes,
					  bool ring0Emulated = false);

} // namespace spindle

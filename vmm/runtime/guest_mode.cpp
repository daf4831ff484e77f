#include "vmm/runtime/guest_mode.h"

#include "spindle_abi.h"

namespace spindle {

Result<GuestModeChoice> parseGuestModeChoice(const std::string &text)
{
	if (text == "auto")
		return GuestModeChoice::Auto;
	if (text == "ring0")
		return GuestModeChoice::Ring0;
	if (text == "ring3")
		return GuestModeChoice::Ring3;
	return Error::invalid("guest mode '" + text + "' is not auto, ring0 or ring3");
}

Result<GuestModeDecision> chooseGuestMode(GuestModeChoice choice, KvmBackend backend, uint32_t imageModes,
					  bool ring0Emulated)
{
	const bool declaresRing3 = imageModes & SPINDLE_GUEST_MODE_F_RING3;
	const bool runsInRing0 = imageModes == 0 || (imageModes & SPINDLE_GUEST_MODE_F_RING0);
	const std::string backendName(kvmBackendName(backend));
	switch (choice) {
	case GuestModeChoice::Ring0:
		if (!runsInRing0)
			return Error::invalid("the guest declares it runs in ring 3 only (its Spindle note); "
					      "use --guest-mode ring3 or auto");
		return GuestModeDecision{GuestMode::Ring0, "ring0 as asked", {}};
	case GuestModeChoice::Ring3:
		if (!declaresRing3)
			return GuestModeDecision{GuestMode::Ring3, "ring3 as asked",
						 "the guest does not declare ring 3 (no Spindle note saying so); "
						 "booting it there anyway, as asked"};
		return GuestModeDecision{GuestMode::Ring3, "ring3 as asked", {}};
	case GuestModeChoice::Auto:
		break;
	}
	const bool emulated = backend == KvmBackend::Pvm || (backend == KvmBackend::Unknown && ring0Emulated);
	if (!emulated)
		return GuestModeDecision{GuestMode::Ring0, "auto: " + backendName + " runs ring-0 guest code natively", {}};
	if (!runsInRing0 || declaresRing3)
		return GuestModeDecision{GuestMode::Ring3, "auto: " + backendName + " emulates ring-0 guest code", {}};
	return GuestModeDecision{GuestMode::Ring0, "auto: the guest does not declare ring 3",
				 backendName + " emulates ring-0 guest code (about 1.5 us per instruction) and this guest "
					       "does not declare ring 3, so it runs emulated"};
}

} // namespace spindle

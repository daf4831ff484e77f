#pragma once

// The CPUID table a Spindle vCPU sees: what KVM supports, the vCPU's own APIC ID, and Spindle's
// leaves at 0x40000000 (signature, interface version, recommended spin threshold, features).

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace spindle {

std::vector<kvm_cpuid_entry2> makeGuestCpuid(const std::vector<kvm_cpuid_entry2> &supported, unsigned vcpu,
					     uint32_t spinThreshold);

} // namespace spindle

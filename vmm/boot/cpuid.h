#pragma once

// The CPUID table a Spindle vCPU sees: what KVM supports, the vCPU's own APIC ID, and Spindle's
// leaves at 0x40000000 (signature, interface version, recommended spin threshold, features: the
// SPINDLE_CPUID_F_* bits the host enables, which follow --detect).

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace spindle {

std::vector<kvm_cpuid_entry2> makeGuestCpuid(const std::vector<kvm_cpuid_entry2> &supported, unsigned vcpu,
					     uint32_t spinThreshold, uint32_t features);

} // namespace spindle

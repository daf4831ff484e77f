#include "vmm/boot/cpuid.h"

#include <algorithm>

#include "spindle_abi.h"

namespace spindle {

std::vector<kvm_cpuid_entry2> makeGuestCpuid(const std::vector<kvm_cpuid_entry2> &supported, unsigned vcpu,
					     uint32_t spinThreshold, uint32_t features)
{
	std::vector<kvm_cpuid_entry2> entries;
	entries.reserve(supported.size() + 2);
	// KVM's own paravirt leaves live in the same range; Spindle's guests speak Spindle's.
	for (const kvm_cpuid_entry2 &entry : supported) {
		if (entry.function >= SPINDLE_CPUID_BASE && entry.function < SPINDLE_CPUID_BASE + 0x100)
			continue;
		kvm_cpuid_entry2 copy = entry;
		if (copy.function == 1)
			copy.ebx = (copy.ebx & 0x00ffffffu) | ((vcpu & 0xffu) << 24); // initial APIC ID
		if (copy.function == 0xb || copy.function == 0x1f)
			copy.edx = vcpu; // x2APIC ID
		entries.push_back(copy);
	}
	kvm_cpuid_entry2 base{};
	base.function = SPINDLE_CPUID_BASE;
	base.eax = SPINDLE_CPUID_FEATURES;
	base.ebx = SPINDLE_CPUID_SIG_EBX;
	base.ecx = SPINDLE_CPUID_SIG_ECX;
	base.edx = SPINDLE_CPUID_SIG_EDX;
	entries.push_back(base);

	kvm_cpuid_entry2 leaf{};
	leaf.function = SPINDLE_CPUID_FEATURES;
	leaf.eax = SPINDLE_CPUID_VERSION;
	leaf.ebx = spinThreshold;
	leaf.ecx = features;
	entries.push_back(leaf);
	return entries;
}

} // namespace spindle

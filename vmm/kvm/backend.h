#pragma once

// Which KVM backend serves /dev/kvm: hardware VMX or SVM, or PVM (kvm_pvm: software
// virtualization that runs the guest at CPL 3 with shadow paging; see ../shared/DESIGN.md).
// It decides what a guest can expect: under PVM, PAUSE never exits and ring-0 guest code is
// emulated instruction by instruction, so the bundled guests boot in ring 3 there.

#include <string_view>

namespace spindle {

enum class KvmBackend { Vmx, Svm, Pvm, Unknown };

std::string_view kvmBackendName(KvmBackend backend); // "VMX", "SVM", "PVM", "unknown"

struct KvmBackendFacts {
	bool cpuVmx = false;       // /proc/cpuinfo flags has vmx
	bool cpuSvm = false;       // ... svm
	bool kvmIntelLoaded = false; // /sys/module/kvm_intel
	bool kvmAmdLoaded = false;   // /sys/module/kvm_amd
	bool kvmPvmLoaded = false;   // /sys/module/kvm_pvm
};

// Pure, for tests. A hardware module counts only where the CPU has the extension it drives.
KvmBackend classifyKvmBackend(const KvmBackendFacts &facts);

// Reads the facts from this host once and caches the answer.
KvmBackend hostKvmBackend();

} // namespace spindle

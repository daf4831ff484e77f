#pragma once

// The layout of struct kvm_cpuid2 as the kernel sees it, shared by KvmSystem (GET_SUPPORTED) and
// KvmVcpu (SET_CPUID2). Debian 12's uapi headers declare its flexible array with
// __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in C++: sizeof(kvm_cpuid2) becomes 12,
// entries move to offset 12, and the ioctl numbers encode the wrong size (KVM answers EINVAL).
// So the layout and the ioctl numbers are spelled out here.

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace spindle::kvm_detail {

struct CpuidHeader {
	uint32_t nent;
	uint32_t padding;
};
static_assert(sizeof(CpuidHeader) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);

inline std::vector<uint8_t> cpuidBuffer(uint32_t count)
{
	std::vector<uint8_t> buffer(sizeof(CpuidHeader) + count * sizeof(kvm_cpuid_entry2), 0);
	CpuidHeader header{count, 0};
	std::memcpy(buffer.data(), &header, sizeof(header));
	return buffer;
}

} // namespace spindle::kvm_detail

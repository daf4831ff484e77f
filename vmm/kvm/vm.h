#pragma once

// One KVM virtual machine: memory slots, VM-wide capabilities, vCPU creation.

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/kvm/guest_memory.h"

namespace spindle {

class KvmVcpu;

class KvmVm
{
public:
	explicit KvmVm(UniqueFd fd) : fd_(std::move(fd)) {}

	Status setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, const GuestMemory &memory);
	// A slot backed by part of a host mapping (size a multiple of 4 KiB).
	Status setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, uint8_t *host, uint64_t size);
	// KVM_ENABLE_CAP with one argument (e.g. KVM_CAP_X86_DISABLE_EXITS). Must precede vCPUs.
	Status enableCap(uint32_t capability, uint64_t arg0);
	int checkExtension(long capability) const;
	Result<KvmVcpu> createVcpu(unsigned index, int mmapSize);

private:
	UniqueFd fd_;
};

} // namespace spindle

#pragma once

// One KVM virtual machine: memory slots, VM-wide capabilities, vCPU creation.

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/kvm/guest_memory.h"

namespace spindle {

class Vcpu;

class Vm
{
public:
	explicit Vm(UniqueFd fd) : fd_(std::move(fd)) {}

	Status setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, const GuestMemory &memory);
	// KVM_ENABLE_CAP with one argument (e.g. KVM_CAP_X86_DISABLE_EXITS). Must precede vCPUs.
	Status enableCap(uint32_t capability, uint64_t arg0);
	int checkExtension(long capability) const;
	Result<Vcpu> createVcpu(unsigned index, int mmapSize);
	// kHz of the guest TSC, or an error when KVM cannot tell (KVM_GET_TSC_KHZ on the VM fd
	// needs Linux 5.x with KVM_CAP_VM_TSC_CONTROL; the vCPU fd works on older kernels).
	Result<uint64_t> tscKhz() const;

	int fd() const { return fd_.get(); }

private:
	UniqueFd fd_;
};

} // namespace spindle

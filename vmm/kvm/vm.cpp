// One KVM VM: memory slots, capabilities, vCPU creation.

#include "vmm/kvm/vm.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/kvm/vcpu.h"

namespace spindle {

Status KvmVm::setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, const GuestMemory &memory)
{
	return setMemorySlot(slot, guestPhysAddr, memory.hostBase(), memory.size());
}

Status KvmVm::setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, uint8_t *host, uint64_t size)
{
	kvm_userspace_memory_region region{};
	region.slot = slot;
	region.guest_phys_addr = guestPhysAddr;
	region.memory_size = size;
	region.userspace_addr = reinterpret_cast<uint64_t>(host);
	if (ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return Error::fromErrno("KVM_SET_USER_MEMORY_REGION");
	return {};
}

Status KvmVm::enableCap(uint32_t capability, uint64_t arg0)
{
	kvm_enable_cap cap{};
	cap.cap = capability;
	cap.args[0] = arg0;
	if (ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) < 0)
		return Error::fromErrno("KVM_ENABLE_CAP(" + std::to_string(capability) + ")");
	return {};
}

int KvmVm::checkExtension(long capability) const
{
	int value = ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
	return value < 0 ? 0 : value;
}

Result<KvmVcpu> KvmVm::createVcpu(unsigned index, int mmapSize)
{
	UniqueFd fd(ioctl(fd_.get(), KVM_CREATE_VCPU, index));
	if (!fd.isValid())
		return Error::fromErrno("KVM_CREATE_VCPU " + std::to_string(index));
	void *run = mmap(nullptr, static_cast<size_t>(mmapSize), PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd.get(), 0);
	if (run == MAP_FAILED)
		return Error::fromErrno("mapping kvm_run of vCPU " + std::to_string(index));
	return KvmVcpu(std::move(fd), static_cast<kvm_run *>(run), static_cast<size_t>(mmapSize));
}

} // namespace spindle

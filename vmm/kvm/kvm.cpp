// The thin wrappers over /dev/kvm, the VM fd and the vCPU fds (KvmSystem, Vm, Vcpu).

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

namespace spindle {

namespace {

// struct kvm_cpuid2 as the kernel sees it. Debian 12's uapi headers declare its flexible array
// with __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in C++: sizeof(kvm_cpuid2) becomes
// 12, entries move to offset 12, and the ioctl numbers encode the wrong size (KVM answers
// EINVAL). So the layout and the ioctl numbers are spelled out here.
struct CpuidHeader {
	uint32_t nent;
	uint32_t padding;
};
static_assert(sizeof(CpuidHeader) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);

std::vector<uint8_t> cpuidBuffer(uint32_t count)
{
	std::vector<uint8_t> buffer(sizeof(CpuidHeader) + count * sizeof(kvm_cpuid_entry2), 0);
	CpuidHeader header{count, 0};
	std::memcpy(buffer.data(), &header, sizeof(header));
	return buffer;
}

} // namespace

Result<KvmSystem> KvmSystem::open(const std::string &path)
{
	UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
	if (!fd.isValid())
		return Error::fromErrno("opening " + path);
	int version = ioctl(fd.get(), KVM_GET_API_VERSION, 0);
	if (version != kApiVersion)
		return Error(ENOTSUP, path + " speaks KVM API " + std::to_string(version) + ", not " +
					      std::to_string(kApiVersion));
	return KvmSystem(std::move(fd));
}

int KvmSystem::checkExtension(long capability) const
{
	int value = ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
	return value < 0 ? 0 : value;
}

Result<int> KvmSystem::vcpuMmapSize() const
{
	int size = ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < static_cast<int>(sizeof(kvm_run)))
		return Error::fromErrno("KVM_GET_VCPU_MMAP_SIZE");
	return size;
}

int KvmSystem::maxVcpus() const
{
	if (int max = checkExtension(KVM_CAP_MAX_VCPUS); max > 0)
		return max;
	if (int nr = checkExtension(KVM_CAP_NR_VCPUS); nr > 0)
		return nr;
	return 4; // the API documentation's fallback
}

Result<std::vector<kvm_cpuid_entry2>> KvmSystem::supportedCpuid() const
{
	// Grow the buffer until KVM stops saying E2BIG.
	for (uint32_t count = 64; count <= 4096; count *= 2) {
		std::vector<uint8_t> buffer = cpuidBuffer(count);
		if (ioctl(fd_.get(), kGetSupportedCpuid, buffer.data()) == 0) {
			CpuidHeader header;
			std::memcpy(&header, buffer.data(), sizeof(header));
			std::vector<kvm_cpuid_entry2> entries(std::min(header.nent, count));
			std::memcpy(entries.data(), buffer.data() + sizeof(header), entries.size() * sizeof(kvm_cpuid_entry2));
			return entries;
		}
		if (errno != E2BIG)
			return Error::fromErrno("KVM_GET_SUPPORTED_CPUID");
	}
	return Error(E2BIG, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

Result<Vm> KvmSystem::createVm() const
{
	int fd;
	// KVM_CREATE_VM can fail with EINTR on some kernels while it allocates; retry a little.
	for (int attempt = 0;; ++attempt) {
		fd = ioctl(fd_.get(), KVM_CREATE_VM, 0);
		if (fd >= 0 || errno != EINTR || attempt > 8)
			break;
	}
	if (fd < 0)
		return Error::fromErrno("KVM_CREATE_VM");
	return Vm(UniqueFd(fd));
}

Status Vm::setMemorySlot(uint32_t slot, uint64_t guestPhysAddr, const GuestMemory &memory)
{
	kvm_userspace_memory_region region{};
	region.slot = slot;
	region.guest_phys_addr = guestPhysAddr;
	region.memory_size = memory.size();
	region.userspace_addr = reinterpret_cast<uint64_t>(memory.hostBase());
	if (ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return Error::fromErrno("KVM_SET_USER_MEMORY_REGION");
	return {};
}

Status Vm::enableCap(uint32_t capability, uint64_t arg0)
{
	kvm_enable_cap cap{};
	cap.cap = capability;
	cap.args[0] = arg0;
	if (ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) < 0)
		return Error::fromErrno("KVM_ENABLE_CAP(" + std::to_string(capability) + ")");
	return {};
}

int Vm::checkExtension(long capability) const
{
	int value = ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
	return value < 0 ? 0 : value;
}

Result<uint64_t> Vm::tscKhz() const
{
	int khz = ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return Error::fromErrno("KVM_GET_TSC_KHZ");
	return static_cast<uint64_t>(khz);
}

Result<Vcpu> Vm::createVcpu(unsigned index, int mmapSize)
{
	UniqueFd fd(ioctl(fd_.get(), KVM_CREATE_VCPU, index));
	if (!fd.isValid())
		return Error::fromErrno("KVM_CREATE_VCPU " + std::to_string(index));
	void *run = mmap(nullptr, static_cast<size_t>(mmapSize), PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd.get(), 0);
	if (run == MAP_FAILED)
		return Error::fromErrno("mapping kvm_run of vCPU " + std::to_string(index));
	return Vcpu(std::move(fd), static_cast<kvm_run *>(run), static_cast<size_t>(mmapSize), index);
}

Vcpu::Vcpu(UniqueFd fd, kvm_run *run, size_t runSize, unsigned index)
	: fd_(std::move(fd)), run_(run), runSize_(runSize), index_(index)
{
}

Vcpu::Vcpu(Vcpu &&other) noexcept
	: fd_(std::move(other.fd_)), run_(std::exchange(other.run_, nullptr)),
	  runSize_(std::exchange(other.runSize_, 0)), index_(other.index_)
{
}

Vcpu::~Vcpu()
{
	if (run_)
		munmap(run_, runSize_);
}

Result<kvm_regs> Vcpu::regs() const
{
	kvm_regs regs{};
	if (ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0)
		return Error::fromErrno("KVM_GET_REGS");
	return regs;
}

Status Vcpu::setRegs(const kvm_regs &regs)
{
	if (ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0)
		return Error::fromErrno("KVM_SET_REGS");
	return {};
}

Result<kvm_sregs> Vcpu::sregs() const
{
	kvm_sregs sregs{};
	if (ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0)
		return Error::fromErrno("KVM_GET_SREGS");
	return sregs;
}

Status Vcpu::setSregs(const kvm_sregs &sregs)
{
	if (ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0)
		return Error::fromErrno("KVM_SET_SREGS");
	return {};
}

Status Vcpu::setCpuid(const std::vector<kvm_cpuid_entry2> &entries)
{
	std::vector<uint8_t> buffer = cpuidBuffer(static_cast<uint32_t>(entries.size()));
	std::memcpy(buffer.data() + sizeof(CpuidHeader), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
	if (ioctl(fd_.get(), kSetCpuid2, buffer.data()) < 0)
		return Error::fromErrno("KVM_SET_CPUID2");
	return {};
}

Result<uint64_t> Vcpu::tscKhz() const
{
	int khz = ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return Error::fromErrno("KVM_GET_TSC_KHZ");
	return static_cast<uint64_t>(khz);
}

Status Vcpu::runOnce()
{
	if (ioctl(fd_.get(), KVM_RUN, 0) < 0)
		return Error::fromErrno("KVM_RUN");
	return {};
}

} // namespace spindle

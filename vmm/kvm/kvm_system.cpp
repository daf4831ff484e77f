// /dev/kvm: API version, capabilities, supported CPUID, VM creation.

#include "vmm/kvm/kvm_system.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>

#include "vmm/kvm/cpuid_buffer.h"
#include "vmm/kvm/vm.h"

namespace spindle {

using namespace kvm_detail;

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

Result<KvmVm> KvmSystem::createVm() const
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
	return KvmVm(UniqueFd(fd));
}

} // namespace spindle

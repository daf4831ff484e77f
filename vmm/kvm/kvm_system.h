#pragma once

// /dev/kvm: the system-level KVM handle (API version, capabilities, supported CPUID).

#include <linux/kvm.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace spindle {

class KvmVm;

class KvmSystem
{
public:
	static constexpr int kApiVersion = 12;

	// Opens /dev/kvm (or path) and checks the API version.
	static Result<KvmSystem> open(const std::string &path = "/dev/kvm");

	// KVM_CHECK_EXTENSION on the system fd: 0 when absent, else a capability-specific value.
	int checkExtension(long capability) const;
	Result<int> vcpuMmapSize() const;
	int maxVcpus() const; // KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS, then 4
	Result<std::vector<kvm_cpuid_entry2>> supportedCpuid() const;
	Result<KvmVm> createVm() const;


private:
	explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
	UniqueFd fd_;
};

} // namespace spindle

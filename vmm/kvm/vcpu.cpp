// One vCPU: registers, CPUID, KVM_RUN, and the kick signal.

#include "vmm/kvm/vcpu.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <mutex>
#include <utility>

#include "vmm/kvm/cpuid_buffer.h"

namespace spindle {

using namespace kvm_detail;

void installVcpuKickHandler()
{
	static std::once_flag once;
	std::call_once(once, [] {
		struct sigaction action {};
		action.sa_handler = [](int) {};
		sigemptyset(&action.sa_mask);
		action.sa_flags = 0; // no SA_RESTART: KVM_RUN must return EINTR
		sigaction(kVcpuKickSignal, &action, nullptr);
	});
}

KvmVcpu::KvmVcpu(UniqueFd fd, kvm_run *run, size_t runSize) : fd_(std::move(fd)), run_(run), runSize_(runSize)
{
}

KvmVcpu::KvmVcpu(KvmVcpu &&other) noexcept
	: fd_(std::move(other.fd_)), run_(std::exchange(other.run_, nullptr)), runSize_(std::exchange(other.runSize_, 0))
{
}

KvmVcpu::~KvmVcpu()
{
	if (run_)
		munmap(run_, runSize_);
}

Result<kvm_regs> KvmVcpu::regs() const
{
	kvm_regs regs{};
	if (ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0)
		return Error::fromErrno("KVM_GET_REGS");
	return regs;
}

Status KvmVcpu::setRegs(const kvm_regs &regs)
{
	if (ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0)
		return Error::fromErrno("KVM_SET_REGS");
	return {};
}

Result<kvm_sregs> KvmVcpu::sregs() const
{
	kvm_sregs sregs{};
	if (ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0)
		return Error::fromErrno("KVM_GET_SREGS");
	return sregs;
}

Status KvmVcpu::setSregs(const kvm_sregs &sregs)
{
	if (ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0)
		return Error::fromErrno("KVM_SET_SREGS");
	return {};
}

Status KvmVcpu::setCpuid(const std::vector<kvm_cpuid_entry2> &entries)
{
	std::vector<uint8_t> buffer = cpuidBuffer(static_cast<uint32_t>(entries.size()));
	std::memcpy(buffer.data() + sizeof(CpuidHeader), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
	if (ioctl(fd_.get(), kSetCpuid2, buffer.data()) < 0)
		return Error::fromErrno("KVM_SET_CPUID2");
	return {};
}

Result<uint64_t> KvmVcpu::tscKhz() const
{
	int khz = ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return Error::fromErrno("KVM_GET_TSC_KHZ");
	return static_cast<uint64_t>(khz);
}

Status KvmVcpu::runOnce()
{
	if (ioctl(fd_.get(), KVM_RUN, 0) < 0)
		return Error::fromErrno("KVM_RUN");
	return {};
}

} // namespace spindle

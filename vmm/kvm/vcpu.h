#pragma once

// One vCPU: its fd, the shared kvm_run page, registers, KVM_RUN.

#include <linux/kvm.h>
#include <signal.h>

#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace spindle {

// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does nothing: the point is
// the EINTR, together with kvm_run.immediate_exit for a kick that lands before KVM_RUN.
constexpr int kVcpuKickSignal = SIGUSR1;
// Installs that handler (no SA_RESTART) once per process.
void installVcpuKickHandler();

class KvmVcpu
{
public:
	KvmVcpu(UniqueFd fd, kvm_run *run, size_t runSize);
	KvmVcpu(KvmVcpu &&other) noexcept;
	KvmVcpu &operator=(KvmVcpu &&) = delete;
	KvmVcpu(const KvmVcpu &) = delete;
	KvmVcpu &operator=(const KvmVcpu &) = delete;
	~KvmVcpu();

	kvm_run *run() const { return run_; }
	// For the benchmark that times raw ioctls (bench/sampling); the VMM itself uses the methods.
	int fd() const { return fd_.get(); }

	Result<kvm_regs> regs() const;
	Status setRegs(const kvm_regs &regs);
	Result<kvm_sregs> sregs() const;
	Status setSregs(const kvm_sregs &sregs);
	Status setCpuid(const std::vector<kvm_cpuid_entry2> &entries);
	Result<uint64_t> tscKhz() const;

	// One KVM_RUN. EINTR (a kick) comes back as an error with code EINTR; the caller decides.
	Status runOnce();

private:
	UniqueFd fd_;
	kvm_run *run_;
	size_t runSize_;
};

} // namespace spindle

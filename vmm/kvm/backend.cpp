#include "vmm/kvm/backend.h"

#include <unistd.h>

#include <fstream>
#include <string>

namespace spindle {

std::string_view kvmBackendName(KvmBackend backend)
{
	switch (backend) {
	case KvmBackend::Vmx: return "VMX";
	case KvmBackend::Svm: return "SVM";
	case KvmBackend::Pvm: return "PVM";
	case KvmBackend::Unknown: break;
	}
	return "unknown";
}

KvmBackend classifyKvmBackend(const KvmBackendFacts &facts)
{
	if (facts.cpuVmx && facts.kvmIntelLoaded)
		return KvmBackend::Vmx;
	if (facts.cpuSvm && facts.kvmAmdLoaded)
		return KvmBackend::Svm;
	if (facts.kvmPvmLoaded)
		return KvmBackend::Pvm;
	return KvmBackend::Unknown;
}

namespace {

KvmBackendFacts readFacts()
{
	KvmBackendFacts facts;
	std::ifstream cpuinfo("/proc/cpuinfo");
	std::string line;
	while (std::getline(cpuinfo, line)) {
		if (line.rfind("flags", 0) != 0)
			continue;
		line += ' ';
		facts.cpuVmx = line.find(" vmx ") != std::string::npos;
		facts.cpuSvm = line.find(" svm ") != std::string::npos;
		break;
	}
	facts.kvmIntelLoaded = access("/sys/module/kvm_intel", F_OK) == 0;
	facts.kvmAmdLoaded = access("/sys/module/kvm_amd", F_OK) == 0;
	facts.kvmPvmLoaded = access("/sys/module/kvm_pvm", F_OK) == 0;
	return facts;
}

} // namespace

KvmBackend hostKvmBackend()
{
	static const KvmBackend backend = classifyKvmBackend(readFacts());
	return backend;
}

} // namespace spindle

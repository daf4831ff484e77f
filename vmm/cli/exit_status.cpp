#include "vmm/cli/exit_status.h"

namespace spindle {

int exitStatusFor(const SessionReport &report)
{
	int status = 0;
	for (const VmReport &vm : report.vms) {
		int vmStatus = 0;
		switch (vm.stopReason) {
		case StopReason::GuestExit: vmStatus = vm.exitCode.value_or(kExitVmFailed); break;
		case StopReason::Fatal:
		case StopReason::AllHalted: vmStatus = kExitVmFailed; break;
		case StopReason::Requested:
		case StopReason::None: vmStatus = report.timedOut ? kExitTimeout : kExitInterrupted; break;
		}
		if (vmStatus == 0 && !vm.resultsOk)
			vmStatus = kExitVmFailed;
		if (status == 0)
			status = vmStatus;
	}
	if (report.signal == kSeccompStopValue)
		return kExitVmFailed; // a seccomp violation: the handler said which call
	if (report.timedOut)
		return kExitTimeout;
	if (report.signal)
		return kExitInterrupted;
	return status;
}

int exitStatusFor(const Error &error)
{
	return error.isInput() ? kExitUsage : kExitVmFailed;
}

} // namespace spindle

#pragma once

// Exit dispatch: a free function from one kvm_run to an outcome, over the buses. No ioctls and
// no device names here, so it is unit-tested with a hand-filled kvm_run.

#include <linux/kvm.h>

#include <cstddef>
#include <functional>
#include <string>

#include "devices/bus.h"
#include "vmm/runtime/exit_counters.h"

namespace spindle {

enum class ExitOutcome {
	Continue, // run the vCPU again
	Halted,   // HLT with interrupts off: this vCPU is done for good
	Fatal,    // the VM cannot go on (triple fault, failed entry, internal error, unknown exit)
};

struct ExitContext {
	const Bus &pio;
	const Bus &mmio;
	unsigned vcpu;
	size_t runSize; // bytes of the kvm_run mapping, to bound io.data_offset
	ExitCounters &counters;
	// Called for accesses nobody claims (the caller rate-limits the log).
	std::function<void(const std::string &what)> onUnclaimed;
};

struct ExitResult {
	ExitOutcome outcome;
	std::string reason; // for Fatal: one line naming the exit
};

ExitResult dispatchExit(kvm_run &run, const ExitContext &context);

} // namespace spindle

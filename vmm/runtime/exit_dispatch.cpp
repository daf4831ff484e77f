#include "common/format.h"
#include "vmm/runtime/exit_dispatch.h"

#include <cstdio>
#include <cstring>

namespace spindle {

namespace {

ExitResult handleIo(kvm_run &run, const ExitContext &context)
{
	context.counters.add(ExitKind::Io);
	// A copy: the fields checked must be the fields used, even if the data area (bounded only by
	// the mapping) overlaps them and a device's read writes over them.
	const auto io = run.io;
	const uint64_t bytes = uint64_t{io.size} * io.count;
	if ((io.size != 1 && io.size != 2 && io.size != 4) || io.data_offset > context.runSize ||
	    bytes > context.runSize - io.data_offset)
		return {ExitOutcome::Fatal, "malformed port I/O exit (size " + std::to_string(io.size) + ", count " +
						    std::to_string(io.count) + ")"};
	uint8_t *data = reinterpret_cast<uint8_t *>(&run) + io.data_offset;
	for (uint32_t i = 0; i < io.count; ++i) {
		std::span<uint8_t> item(data + uint64_t{i} * io.size, io.size);
		bool claimed;
		if (io.direction == KVM_EXIT_IO_OUT) {
			claimed = context.pio.write(context.vcpu, io.port, item);
		} else {
			claimed = context.pio.read(context.vcpu, io.port, item);
			if (!claimed)
				std::memset(item.data(), 0xff, item.size()); // an empty bus floats high
		}
		if (!claimed) {
			context.counters.add(ExitKind::Unclaimed);
			if (context.onUnclaimed)
				context.onUnclaimed(std::string(io.direction == KVM_EXIT_IO_OUT ? "out" : "in") +
						    " port " + hex(io.port) + " size " + std::to_string(io.size));
		}
	}
	return {ExitOutcome::Continue, {}};
}

ExitResult handleMmio(kvm_run &run, const ExitContext &context)
{
	context.counters.add(ExitKind::Mmio);
	auto &mmio = run.mmio;
	if (mmio.len == 0 || mmio.len > sizeof(mmio.data))
		return {ExitOutcome::Fatal, "malformed MMIO exit (length " + std::to_string(mmio.len) + ")"};
	std::span<uint8_t> data(mmio.data, mmio.len);
	bool claimed = mmio.is_write ? context.mmio.write(context.vcpu, mmio.phys_addr, data)
				     : context.mmio.read(context.vcpu, mmio.phys_addr, data);
	if (!claimed) {
		if (!mmio.is_write)
			std::memset(mmio.data, 0xff, mmio.len);
		context.counters.add(ExitKind::Unclaimed);
		if (context.onUnclaimed)
			context.onUnclaimed(std::string(mmio.is_write ? "write" : "read") + " MMIO " +
					    hex(mmio.phys_addr) + " length " + std::to_string(mmio.len));
	}
	return {ExitOutcome::Continue, {}};
}

const char *internalErrorName(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
	default: return "unknown suberror";
	}
}

} // namespace

ExitResult dispatchExit(kvm_run &run, const ExitContext &context)
{
	switch (run.exit_reason) {
	case KVM_EXIT_IO:
		return handleIo(run, context);
	case KVM_EXIT_MMIO:
		return handleMmio(run, context);
	case KVM_EXIT_HLT:
		context.counters.add(ExitKind::Hlt);
		return {ExitOutcome::Halted, {}};
	case KVM_EXIT_INTR:
		context.counters.add(ExitKind::Interrupted);
		return {ExitOutcome::Continue, {}};
	case KVM_EXIT_SHUTDOWN:
		context.counters.add(ExitKind::Shutdown);
		return {ExitOutcome::Fatal, "guest crashed: triple fault (KVM_EXIT_SHUTDOWN)"};
	case KVM_EXIT_FAIL_ENTRY:
		context.counters.add(ExitKind::FailEntry);
		return {ExitOutcome::Fatal, "VM entry failed, hardware reason " +
						    hex(run.fail_entry.hardware_entry_failure_reason)};
	case KVM_EXIT_INTERNAL_ERROR:
		// Where KVM emulates the guest (PVM runs ring-0 code that way), a triple fault comes
		// back as a failed emulation, not as a shutdown: to the user both are a crashed guest.
		context.counters.add(ExitKind::InternalError);
		return {ExitOutcome::Fatal, "guest crashed: KVM internal error, suberror " +
						    std::to_string(run.internal.suberror) + " (" +
						    internalErrorName(run.internal.suberror) + ")"};
	default:
		context.counters.add(ExitKind::Other);
		return {ExitOutcome::Fatal, "unhandled exit reason " + std::to_string(run.exit_reason)};
	}
}

} // namespace spindle

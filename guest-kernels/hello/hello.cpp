// hello: the smallest useful SMP guest. Every vCPU says hello; the last one to do so reports that
// all did and exits with the code from the argument exit=N (default 0).

#include "guest-kernels/runtime/args.h"
#include "guest-kernels/runtime/runtime.h"

namespace spindle::guest {

namespace {

constinit uint32_t g_arrived = 0;

// Returns false (after reporting through vCPU 0) if the arguments are bad.
bool parseExitCode(uint32_t cpu, const char *args, int32_t &code)
{
	ArgCursor cursor(args);
	ArgToken token;
	while (cursor.next(token)) {
		uint64_t value;
		if (token.hasValue && token.key == "exit" && parseDecimal(token.value, 255, value)) {
			code = static_cast<int32_t>(value);
			continue;
		}
		// Every vCPU parses the same text, so only vCPU 0 reports; the others just stop.
		if (cpu == 0)
			failVm(cpu, 2, "hello: bad argument '%.*s' (expected exit=N with N in 0..255)",
			       token.text.printLength(), token.text.data);
		return false;
	}
	return true;
}

} // namespace

void guestMain(uint32_t cpu, const spindle_boot_info &boot)
{
	int32_t code = 0;
	if (!parseExitCode(cpu, boot.args, code))
		return;

	print("hello from vCPU %u of %u\n", cpu, boot.vcpu_count);

	// Arriving after printing means that when the count is full, every line is out, so the
	// last arriver may stop the VM.
	if (arrive(g_arrived) == boot.vcpu_count) {
		print("all %u vCPUs said hello\n", boot.vcpu_count);
		exitVm(cpu, code);
	}
}

} // namespace spindle::guest

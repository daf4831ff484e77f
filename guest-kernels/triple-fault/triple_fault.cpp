// triple-fault: announces itself, then makes the CPU triple-fault, which KVM reports as
// KVM_EXIT_SHUTDOWN. Used to test that the VMM handles a guest that dies this way.

#include "guest-kernels/runtime/runtime.h"

namespace spindle::guest {

void guestMain(uint32_t cpu, const spindle_boot_info &)
{
	// One vCPU is enough to bring the VM down; the others stay halted.
	if (cpu != 0)
		return;
	print("triple-fault guest: about to fault\n");

	// With a zero-limit IDT, the breakpoint exception cannot be delivered (#GP), neither can the
	// #GP (#DF), neither can the #DF: shutdown. The VMM loads no IDT anyway; this makes sure. In
	// ring 3 the LIDT itself raises the #GP, which cannot be delivered either.
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} nullIdt = { 0, 0 };
	asm volatile("lidt %0; int3" : : "m"(nullIdt) : "memory");
}

} // namespace spindle::guest

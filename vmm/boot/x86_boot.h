#pragma once

// x86-64 direct boot: Spindle enters every vCPU straight in 64-bit long mode, with paging on
// (identity map of guest RAM in 2 MiB pages), a flat GDT, no IDT (so any exception in an early
// guest triple-faults and is reported, instead of looping), interrupts off, at CPL 0 or CPL 3.
// Ring 3 is the profile for software-virtualized KVM (PVM), which emulates ring-0 guest code
// instruction by instruction but runs ring-3 code natively; it uses the x86-64 Linux user
// selectors, which PVM insists on, and works under VMX and SVM as well.
// guest-kernels/README.md documents the result for guest authors.

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "spindle_abi.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/loader/elf_loader.h"

namespace spindle {

namespace x86 {
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kLargePage = 2ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint16_t kCodeSelector = 0x08;
constexpr uint16_t kDataSelector = 0x10;
constexpr uint16_t kUserDataSelector = 0x2b; // GDT entry 5, RPL 3
constexpr uint16_t kUserCodeSelector = 0x33; // GDT entry 6, RPL 3
constexpr unsigned kGdtEntries = 7;
constexpr uint64_t kPml4 = SPINDLE_PAGE_TABLE_GPA;
constexpr uint64_t kPdpt = SPINDLE_PAGE_TABLE_GPA + kPageSize;
constexpr uint64_t kFirstPd = SPINDLE_PAGE_TABLE_GPA + 2 * kPageSize;
// Page-table entry bits.
constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kLargePageBit = 0x80;
} // namespace x86

enum class GuestMode { Ring0, Ring3 };
std::string_view guestModeName(GuestMode mode); // "ring0", "ring3"
uint32_t guestModeCpl(GuestMode mode);          // SPINDLE_GUEST_RING0 / _RING3

// Where things go in a VM of memSize bytes with vcpuCount vCPUs.
struct MemoryLayout {
	uint64_t memSize;
	unsigned vcpuCount;
	uint64_t stacksBase() const { return memSize - uint64_t{vcpuCount} * SPINDLE_STACK_SIZE; }
	uint64_t stackTop(unsigned vcpu) const { return memSize - uint64_t{vcpu} * SPINDLE_STACK_SIZE; }
	// The window ELF segments may occupy.
	uint64_t kernelWindowStart() const { return SPINDLE_KERNEL_MIN_GPA; }
	uint64_t kernelWindowEnd() const { return stacksBase(); }
};

// Checks memSize (page multiple, within SPINDLE_MIN/MAX_MEM_BYTES) and vcpuCount against the
// ABI's limits and leaves room for stacks above the kernel window.
Status validateLayout(const MemoryLayout &layout);

// Writes PML4, PDPT and one page directory per GiB, mapping [0, memSize rounded up to 2 MiB)
// (the MMIO hole included); in ring 3 every entry has U/S set.
Status writePageTables(GuestMemory &memory, GuestMode mode);
// Null, kernel code 0x08, kernel data 0x10, two unused, user data 0x2b, user code 0x33.
Status writeGdt(GuestMemory &memory);

// The boot info block for this VM: vCPU count, memory map, TSC frequency, arguments.
struct BootInfoInput {
	MemoryLayout layout;
	const ElfImage *kernel;
	uint64_t tscKhz;
	uint32_t spinThreshold;
	bool hints;          // the host reads the hint slots
	uint32_t cpuidFeatures; // SPINDLE_CPUID_F_*, as in CPUID 0x40000001 ECX
	GuestMode mode;
	std::string args; // already joined by single spaces
};
Result<spindle_boot_info> makeBootInfo(const BootInfoInput &input);

// Register state for vCPU index at entry.
kvm_sregs longModeSregs(const kvm_sregs &current, GuestMode mode);
kvm_regs entryRegs(uint64_t entry, uint64_t stackTop, unsigned vcpu);

} // namespace spindle

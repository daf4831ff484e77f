#include <gtest/gtest.h>

#include "vmm/boot/cpuid.h"
#include "vmm/boot/x86_boot.h"

using namespace spindle;

namespace {
uint64_t entryAt(const GuestMemory &memory, uint64_t tableGpa, unsigned index)
{
	uint64_t value;
	std::memcpy(&value, memory.hostPointer(tableGpa + index * 8, 8), 8);
	return value;
}
} // namespace

TEST(PageTables, IdentityMapGuestRamWithLargePages)
{
	auto memory = GuestMemory::create(64 << 20);
	ASSERT_TRUE(memory);

	ASSERT_TRUE(writePageTables(*memory, GuestMode::Ring0));

	EXPECT_EQ(entryAt(*memory, x86::kPml4, 0), x86::kPdpt | 3);
	EXPECT_EQ(entryAt(*memory, x86::kPdpt, 0), x86::kFirstPd | 3);
	EXPECT_EQ(entryAt(*memory, x86::kFirstPd, 0), 0x83u);
	EXPECT_EQ(entryAt(*memory, x86::kFirstPd, 31), (31ull << 21) | 0x83);
	EXPECT_EQ(entryAt(*memory, x86::kFirstPd, 32), 0u); // beyond 64 MiB: not present
	EXPECT_EQ(entryAt(*memory, x86::kPdpt, 1), 0u);
}

TEST(PageTables, RingThreeSetsTheUserBitAtEveryLevel)
{
	auto memory = GuestMemory::create(64 << 20);
	ASSERT_TRUE(memory);

	ASSERT_TRUE(writePageTables(*memory, GuestMode::Ring3));

	EXPECT_EQ(entryAt(*memory, x86::kPml4, 0), x86::kPdpt | 7);
	EXPECT_EQ(entryAt(*memory, x86::kPdpt, 0), x86::kFirstPd | 7);
	EXPECT_EQ(entryAt(*memory, x86::kFirstPd, 31), (31ull << 21) | 0x87);
}

TEST(Gdt, HoldsKernelSelectorsAndTheLinuxUserSelectorsWithDplThree)
{
	auto memory = GuestMemory::create(64 << 20);
	ASSERT_TRUE(memory);

	ASSERT_TRUE(writeGdt(*memory));

	auto descriptor = [&](uint16_t selector) { return entryAt(*memory, SPINDLE_GDT_GPA, selector >> 3); };
	auto dpl = [](uint64_t d) { return (d >> 45) & 3; };
	auto longMode = [](uint64_t d) { return (d >> 53) & 1; };
	EXPECT_EQ(dpl(descriptor(x86::kCodeSelector)), 0u);
	EXPECT_EQ(longMode(descriptor(x86::kCodeSelector)), 1u);
	EXPECT_EQ(dpl(descriptor(x86::kUserCodeSelector)), 3u);
	EXPECT_EQ(longMode(descriptor(x86::kUserCodeSelector)), 1u);
	EXPECT_EQ(dpl(descriptor(x86::kUserDataSelector)), 3u);
	EXPECT_EQ(x86::kUserCodeSelector & 3, 3);
}

TEST(PageTables, SpanSeveralGigabytesWithOneDirectoryEach)
{
	auto memory = GuestMemory::create(3ull << 30); // MAP_NORESERVE: costs nothing
	ASSERT_TRUE(memory);

	ASSERT_TRUE(writePageTables(*memory, GuestMode::Ring0));

	EXPECT_EQ(entryAt(*memory, x86::kPdpt, 2), (x86::kFirstPd + 2 * 4096) | 3);
	EXPECT_EQ(entryAt(*memory, x86::kFirstPd + 2 * 4096, 511), ((3ull << 30) - (2ull << 20)) | 0x83);
}

TEST(MemoryLayout, RejectsTooSmallTooLargeUnalignedAndTooManyVcpus)
{
	EXPECT_TRUE(validateLayout({64 << 20, 4}));
	EXPECT_FALSE(validateLayout({1 << 20, 1}));
	EXPECT_FALSE(validateLayout({(64 << 20) + 100, 1}));
	EXPECT_FALSE(validateLayout({SPINDLE_MAX_MEM_BYTES + 4096, 1}));
	EXPECT_FALSE(validateLayout({64 << 20, 0}));
	EXPECT_FALSE(validateLayout({64 << 20, SPINDLE_MAX_VCPUS + 1}));
	EXPECT_FALSE(validateLayout({4 << 20, 256})); // stacks would eat the kernel window
}

TEST(MemoryLayout, GivesEachVcpuItsOwnStackBelowTheTopOfRam)
{
	MemoryLayout layout{64 << 20, 4};
	EXPECT_EQ(layout.stackTop(0), 64u << 20);
	EXPECT_EQ(layout.stackTop(1), (64u << 20) - SPINDLE_STACK_SIZE);
	EXPECT_EQ(layout.stacksBase(), (64u << 20) - 4 * SPINDLE_STACK_SIZE);
	EXPECT_EQ(layout.stackTop(3) % 16, 0u);
}

TEST(BootInfo, CarriesCountsMemoryMapAndArguments)
{
	ElfImage kernel{0x200000, {{0x200000, 0, 0x1000, 0x3000, true}}};
	BootInfoInput input{{64 << 20, 2}, &kernel, 2500000, 1000, true, 0, GuestMode::Ring0, "lock=ticket cs=1us"};

	auto info = makeBootInfo(input);

	ASSERT_TRUE(info);
	EXPECT_EQ(info->magic, SPINDLE_BOOT_MAGIC);
	EXPECT_EQ(info->vcpu_count, 2u);
	EXPECT_EQ(info->tsc_khz, 2500000u);
	EXPECT_EQ(info->spin_threshold, 1000u);
	EXPECT_STREQ(info->args, "lock=ticket cs=1us");
	EXPECT_EQ(info->args_len, 18u);
	uint64_t covered = 0;
	for (uint32_t i = 0; i < info->mem_map_count; ++i)
		covered += info->mem_map[i].size;
	// The map tiles guest RAM exactly; the MMIO hole below 1 MiB is not in it.
	EXPECT_EQ(covered, (64u << 20) - (SPINDLE_KERNEL_MIN_GPA - SPINDLE_MMIO_HOLE_GPA));
}

TEST(BootInfo, VersionTwoCarriesTheModeTheCpuidLeafAndTheMmioAddresses)
{
	ElfImage kernel{0x200000, {{0x200000, 0, 0x1000, 0x1000, true}}};
	BootInfoInput input{{64 << 20, 1}, &kernel, 1, 64, false, SPINDLE_CPUID_F_PV_DEVICE, GuestMode::Ring3, ""};

	auto info = makeBootInfo(input);

	ASSERT_TRUE(info);
	EXPECT_EQ(info->version, 2u);
	EXPECT_EQ(info->guest_mode, SPINDLE_GUEST_RING3);
	EXPECT_EQ(info->cpuid_version, SPINDLE_CPUID_VERSION);
	EXPECT_EQ(info->cpuid_features, SPINDLE_CPUID_F_PV_DEVICE);
	EXPECT_EQ(info->flags & SPINDLE_BOOT_F_PV_HINTS, 0u);
	EXPECT_EQ(info->serial_mmio_gpa, SPINDLE_SERIAL_MMIO_GPA);
	EXPECT_EQ(info->pv_mmio_gpa, SPINDLE_PV_MMIO_GPA);
}

TEST(BootInfo, RejectsArgumentsLongerThanTheField)
{
	BootInfoInput input{{64 << 20, 1}, nullptr, 0, 1, false, 0, GuestMode::Ring0, std::string(SPINDLE_BOOT_ARGS_MAX, 'a')};
	EXPECT_FALSE(makeBootInfo(input));
}

TEST(EntryState, LongModeWithPagingAndNoIdt)
{
	kvm_sregs sregs = longModeSregs(kvm_sregs{}, GuestMode::Ring0);
	kvm_regs regs = entryRegs(0x200000, 0x400000, 3);

	EXPECT_TRUE(sregs.cr0 & 0x80000001u);
	EXPECT_EQ(sregs.cr3, x86::kPml4);
	EXPECT_TRUE(sregs.efer & 0x500);
	EXPECT_EQ(sregs.cs.l, 1);
	EXPECT_EQ(sregs.idt.limit, 0);
	EXPECT_EQ(regs.rip, 0x200000u);
	EXPECT_EQ(regs.rdi, 3u);
	EXPECT_EQ(regs.rsi, SPINDLE_BOOT_INFO_GPA);
	EXPECT_EQ(regs.rflags & 0x200, 0u); // interrupts off
}

TEST(EntryState, RingThreeUsesTheUserSelectorsAtDplThree)
{
	kvm_sregs sregs = longModeSregs(kvm_sregs{}, GuestMode::Ring3);

	EXPECT_EQ(sregs.cs.selector, 0x33);
	EXPECT_EQ(sregs.cs.dpl, 3);
	EXPECT_EQ(sregs.cs.l, 1);
	EXPECT_EQ(sregs.ss.selector, 0x2b);
	EXPECT_EQ(sregs.ss.dpl, 3);
	EXPECT_EQ(sregs.ds.selector, 0x2b);
	EXPECT_EQ(sregs.gdt.limit, x86::kGdtEntries * 8 - 1);
}

TEST(Cpuid, FeatureBitsAreWhatTheHostEnables)
{
	auto entries = makeGuestCpuid({}, 0, 16, SPINDLE_CPUID_F_PV_DEVICE | SPINDLE_CPUID_F_HINTS);

	ASSERT_EQ(entries.size(), 2u);
	EXPECT_EQ(entries[1].ecx, SPINDLE_CPUID_F_PV_DEVICE | SPINDLE_CPUID_F_HINTS);
}

TEST(Cpuid, ReplacesTheHypervisorLeavesWithSpindlesAndSetsTheApicId)
{
	kvm_cpuid_entry2 leaf1{};
	leaf1.function = 1;
	leaf1.ebx = 0xff000000u | 0x800;
	kvm_cpuid_entry2 kvmSignature{};
	kvmSignature.function = 0x40000000;
	kvmSignature.ebx = 0x4b4d564b; // "KVMK"

	auto entries = makeGuestCpuid({leaf1, kvmSignature}, 5, 777, SPINDLE_CPUID_F_PV_DEVICE);

	ASSERT_EQ(entries.size(), 3u);
	EXPECT_EQ(entries[0].ebx, (5u << 24) | 0x800);
	EXPECT_EQ(entries[1].function, SPINDLE_CPUID_BASE);
	EXPECT_EQ(entries[1].ebx, SPINDLE_CPUID_SIG_EBX);
	EXPECT_EQ(entries[2].function, SPINDLE_CPUID_FEATURES);
	EXPECT_EQ(entries[2].ebx, 777u);
}

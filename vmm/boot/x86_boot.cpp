#include "vmm/boot/x86_boot.h"

#include <cstring>

namespace spindle {

using namespace x86;

Status validateLayout(const MemoryLayout &layout)
{
	if (layout.vcpuCount == 0 || layout.vcpuCount > SPINDLE_MAX_VCPUS)
		return Error::invalid("vCPU count " + std::to_string(layout.vcpuCount) + " outside 1.." +
				      std::to_string(SPINDLE_MAX_VCPUS));
	if (layout.memSize % kPageSize != 0)
		return Error::invalid("memory size must be a multiple of 4 KiB");
	if (layout.memSize < SPINDLE_MIN_MEM_BYTES)
		return Error::invalid("memory size " + std::to_string(layout.memSize >> 10) +
				      " KiB is below the minimum of " + std::to_string(SPINDLE_MIN_MEM_BYTES >> 20) + " MiB");
	if (layout.memSize > SPINDLE_MAX_MEM_BYTES)
		return Error::invalid("memory size " + std::to_string(layout.memSize >> 20) +
				      " MiB is above the maximum of " + std::to_string(SPINDLE_MAX_MEM_BYTES >> 30) + " GiB");
	if (layout.stacksBase() <= layout.kernelWindowStart() + kLargePage)
		return Error::invalid("memory is too small for " + std::to_string(layout.vcpuCount) +
				      " vCPU stacks and a kernel");
	return {};
}

std::string_view guestModeName(GuestMode mode)
{
	return mode == GuestMode::Ring3 ? "ring3" : "ring0";
}

uint32_t guestModeCpl(GuestMode mode)
{
	return mode == GuestMode::Ring3 ? SPINDLE_GUEST_RING3 : SPINDLE_GUEST_RING0;
}

Status writePageTables(GuestMemory &memory, GuestMode mode)
{
	const uint64_t user = mode == GuestMode::Ring3 ? kUser : 0;
	const uint64_t mapped = (memory.size() + kLargePage - 1) / kLargePage * kLargePage;
	const uint64_t directories = (mapped + kGiB - 1) / kGiB;
	if (kFirstPd + directories * kPageSize > SPINDLE_PAGE_TABLE_END)
		return Error::invalid("guest RAM too large for the page-table area");

	uint8_t *tables = memory.hostPointer(kPml4, SPINDLE_PAGE_TABLE_END - kPml4);
	if (!tables)
		return Error::invalid("page-table area lies outside guest RAM");
	std::memset(tables, 0, SPINDLE_PAGE_TABLE_END - kPml4);

	auto entry = [&](uint64_t tableGpa, uint64_t index) {
		return reinterpret_cast<uint64_t *>(tables + (tableGpa - kPml4)) + index;
	};
	*entry(kPml4, 0) = kPdpt | kPresent | kWritable | user;
	for (uint64_t d = 0; d < directories; ++d) {
		const uint64_t pd = kFirstPd + d * kPageSize;
		*entry(kPdpt, d) = pd | kPresent | kWritable | user;
		for (uint64_t i = 0; i < 512; ++i) {
			const uint64_t address = d * kGiB + i * kLargePage;
			if (address >= mapped)
				break;
			*entry(pd, i) = address | kPresent | kWritable | kLargePageBit | user;
		}
	}
	return {};
}

Status writeGdt(GuestMemory &memory)
{
	const uint64_t gdt[kGdtEntries] = {
		0,                     // null
		0x00af9b000000ffffull, // 0x08 64-bit code: present, DPL 0, execute/read, L=1, G=1
		0x00cf93000000ffffull, // 0x10 data: present, DPL 0, read/write, D/B=1, G=1
		0,                     // 0x18 unused (Linux: 32-bit user code is 0x23)
		0,                     // 0x20 unused
		0x00cff3000000ffffull, // 0x2b data: present, DPL 3, read/write, D/B=1, G=1
		0x00affb000000ffffull, // 0x33 64-bit code: present, DPL 3, execute/read, L=1, G=1
	};
	return memory.write(SPINDLE_GDT_GPA, {reinterpret_cast<const uint8_t *>(gdt), sizeof(gdt)});
}

Result<spindle_boot_info> makeBootInfo(const BootInfoInput &input)
{
	if (input.args.size() >= SPINDLE_BOOT_ARGS_MAX)
		return Error::invalid("guest arguments are " + std::to_string(input.args.size()) +
				      " bytes; the limit is " + std::to_string(SPINDLE_BOOT_ARGS_MAX - 1));
	spindle_boot_info info{};
	info.magic = SPINDLE_BOOT_MAGIC;
	info.version = SPINDLE_BOOT_VERSION;
	info.size = sizeof(spindle_boot_info);
	info.vcpu_count = input.layout.vcpuCount;
	info.flags = input.hints ? SPINDLE_BOOT_F_PV_HINTS : 0;
	info.guest_mode = guestModeCpl(input.mode);
	info.cpuid_version = SPINDLE_CPUID_VERSION;
	info.cpuid_features = input.cpuidFeatures;
	info.serial_mmio_gpa = SPINDLE_SERIAL_MMIO_GPA;
	info.pv_mmio_gpa = SPINDLE_PV_MMIO_GPA;
	info.mem_size = input.layout.memSize;
	info.tsc_khz = input.tscKhz;
	info.mailbox_gpa = SPINDLE_MAILBOX_GPA;
	info.hint_gpa = SPINDLE_HINT_GPA;
	info.hint_stride = SPINDLE_HINT_STRIDE;
	info.spin_threshold = input.spinThreshold;

	auto add = [&](uint64_t base, uint64_t size, uint32_t type) {
		if (size == 0 || info.mem_map_count >= SPINDLE_BOOT_MEM_MAP_MAX)
			return;
		info.mem_map[info.mem_map_count++] = spindle_mem_region{base, size, type, 0};
	};
	const uint64_t stacks = input.layout.stacksBase();
	add(0, SPINDLE_MMIO_HOLE_GPA, SPINDLE_MEM_RESERVED); // [hole, 1 MiB) is not RAM
	uint64_t usableStart = SPINDLE_KERNEL_MIN_GPA;
	if (input.kernel) {
		const uint64_t kernelEnd = (input.kernel->end() + kPageSize - 1) / kPageSize * kPageSize;
		add(input.kernel->lowest(), kernelEnd - input.kernel->lowest(), SPINDLE_MEM_KERNEL);
		if (input.kernel->lowest() > SPINDLE_KERNEL_MIN_GPA)
			add(SPINDLE_KERNEL_MIN_GPA, input.kernel->lowest() - SPINDLE_KERNEL_MIN_GPA, SPINDLE_MEM_USABLE);
		usableStart = kernelEnd;
	}
	if (stacks > usableStart)
		add(usableStart, stacks - usableStart, SPINDLE_MEM_USABLE);
	add(stacks, input.layout.memSize - stacks, SPINDLE_MEM_STACKS);

	info.args_len = static_cast<uint32_t>(input.args.size());
	std::memcpy(info.args, input.args.data(), input.args.size());
	info.args[input.args.size()] = '\0';
	return info;
}

kvm_sregs longModeSregs(const kvm_sregs &current, GuestMode mode)
{
	const bool user = mode == GuestMode::Ring3;
	kvm_sregs sregs = current;
	kvm_segment code{};
	code.base = 0;
	code.limit = 0xffffffff;
	code.selector = user ? kUserCodeSelector : kCodeSelector;
	code.type = 11; // execute/read, accessed
	code.present = 1;
	code.dpl = user ? 3 : 0;
	code.db = 0;
	code.s = 1;
	code.l = 1;
	code.g = 1;
	kvm_segment data = code;
	data.selector = user ? kUserDataSelector : kDataSelector;
	data.type = 3; // read/write, accessed
	data.db = 1;
	data.l = 0;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

	sregs.gdt.base = SPINDLE_GDT_GPA;
	sregs.gdt.limit = kGdtEntries * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0; // no IDT: an exception becomes a triple fault (KVM_EXIT_SHUTDOWN)

	constexpr uint64_t kCr0Pe = 1, kCr0Mp = 2, kCr0Et = 0x10, kCr0Ne = 0x20, kCr0Wp = 0x10000,
			   kCr0Pg = 0x80000000ull;
	constexpr uint64_t kCr4Pae = 0x20, kCr4Osfxsr = 0x200, kCr4Osxmmexcpt = 0x400;
	constexpr uint64_t kEferLme = 0x100, kEferLma = 0x400;
	sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
	sregs.cr3 = kPml4;
	sregs.cr4 = kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt;
	sregs.efer = kEferLme | kEferLma;
	return sregs;
}

kvm_regs entryRegs(uint64_t entry, uint64_t stackTop, unsigned vcpu)
{
	kvm_regs regs{};
	regs.rip = entry;
	regs.rsp = stackTop;
	regs.rdi = vcpu;
	regs.rsi = SPINDLE_BOOT_INFO_GPA;
	regs.rflags = 0x2; // reserved bit 1; IF clear
	return regs;
}

} // namespace spindle

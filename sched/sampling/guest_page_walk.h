#pragma once

// Guest virtual to guest physical translation, done by the host on a copy-free view of guest RAM,
// so the sampling detector can read the instruction bytes at a sampled RIP.
//
// x86-64 4-level paging (CR0.PG, EFER.LMA, CR4.LA57 = 0), 4 KiB, 2 MiB and 1 GiB pages; with
// CR0.PG = 0, linear addresses are physical. Spindle's own guests run on an identity map of 2 MiB
// pages (vmm/boot/x86_boot.cpp), but a guest may install any tables it likes, so everything in
// them is hostile: every table and every target page must lie inside guest RAM (and outside the
// MMIO hole), entries with reserved bits set fail as the CPU would fail them, and no byte outside
// the span is ever read. Each entry is read once (a relaxed 8-byte load: another vCPU may be
// rewriting it) and only that copy is used, so a racing guest can change the answer, never the
// bounds. Accessed and dirty bits are not written, as the host is not the guest's MMU.
//
// Pure: no system calls; the caller passes the RAM span and the registers (KVM_GET_SREGS).

#include <cstdint>
#include <span>

#include "common/result.h"

namespace spindle::sched::sampling {

// Guest RAM as the host maps it: bytes from GPA 0, and optionally one range inside it that is
// not RAM (Spindle's MMIO hole, [0xa0000, 0x100000)): a page table or a page there is an error.
struct GuestRam {
	std::span<const uint8_t> bytes;
	uint64_t holeStart = 0;
	uint64_t holeEnd = 0; // empty when holeEnd <= holeStart

	// True when [gpa, gpa + length) is RAM (overflow-safe).
	bool contains(uint64_t gpa, uint64_t length) const;
};

// The registers that decide how the guest translates (from kvm_sregs).
struct PagingRegisters {
	uint64_t cr0 = 0;
	uint64_t cr3 = 0;
	uint64_t cr4 = 0;
	uint64_t efer = 0;
};

namespace paging {
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kCr4La57 = 1ull << 12;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kEferNxe = 1ull << 11;
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kLargePage = 1ull << 7;
constexpr uint64_t kNoExecute = 1ull << 63;
constexpr uint64_t k4K = 1ull << 12, k2M = 1ull << 21, k1G = 1ull << 30;
} // namespace paging

struct Translation {
	uint64_t gpa = 0;
	uint64_t pageSize = 0; // of the page that maps the address (4 KiB with paging off)
	// The access rights of the whole walk (the AND of all levels; executable ignores NX when
	// EFER.NXE is clear). The walker reports them; reading code at a non-executable address is
	// the caller's call (a sampled RIP there means the guest faulted, or the sample is stale).
	bool writable = false;
	bool user = false;
	bool executable = false;
};

class GuestPageWalker
{
public:
	GuestPageWalker(GuestRam ram, PagingRegisters regs) : ram_(ram), regs_(regs) {}

	// The guest physical address of guest virtual address va. Errors (Error::invalid): paging
	// mode not supported (32-bit or PAE legacy paging, 5-level), non-canonical address, a level
	// not present, reserved bits set, a table or the page outside guest RAM.
	Result<Translation> translate(uint64_t va) const;

	// Reads out.size() bytes from va, page by page (the pages need not be contiguous in guest
	// physical memory). Fails, with out unspecified, if any byte is not mapped to RAM.
	Status read(uint64_t va, std::span<uint8_t> out) const;

	const GuestRam &ram() const { return ram_; }

private:
	Result<uint64_t> loadEntry(uint64_t tableGpa, unsigned index, int level) const;

	GuestRam ram_;
	PagingRegisters regs_;
};

} // namespace spindle::sched::sampling

#include "sched/sampling/guest_page_walk.h"

#include <algorithm>
#include <cstring>

#include "common/format.h"

namespace spindle::sched::sampling {

using namespace paging;

namespace {

// Physical-address bits of an entry (bits 51:12; the CPU's MAXPHYADDR may be lower, and an
// address above guest RAM fails the bounds check anyway).
constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;
// PCID / PWT / PCD live in CR3's low 12 bits; bit 63 is "no flush" on a MOV to CR3.
constexpr uint64_t kCr3Mask = kAddressMask;

const char *levelName(int level)
{
	switch (level) {
	case 4: return "PML4";
	case 3: return "PDPT";
	case 2: return "page directory";
	default: return "page table";
	}
}

bool canonical(uint64_t va)
{
	uint64_t top = va >> 47;
	return top == 0 || top == 0x1ffff;
}

} // namespace

bool GuestRam::contains(uint64_t gpa, uint64_t length) const
{
	if (gpa > bytes.size() || length > bytes.size() - gpa)
		return false;
	// [gpa, gpa + length) must not overlap the hole.
	bool hole = holeEnd > holeStart;
	return !hole || gpa + length <= holeStart || gpa >= holeEnd;
}

Result<uint64_t> GuestPageWalker::loadEntry(uint64_t tableGpa, unsigned index, int level) const
{
	uint64_t gpa = tableGpa + uint64_t{index} * 8;
	if (!ram_.contains(gpa, 8))
		return Error::invalid(std::string(levelName(level)) + " at " + hex(tableGpa) + " is outside guest RAM");
	const uint8_t *p = ram_.bytes.data() + gpa;
	uint64_t entry;
	// One read, never repeated: a guest that rewrites the entry meanwhile gets one of the two
	// values, and only that copy is checked and used.
	if (reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) == 0)
		entry = __atomic_load_n(reinterpret_cast<const uint64_t *>(p), __ATOMIC_RELAXED);
	else
		std::memcpy(&entry, p, sizeof(entry));
	return entry;
}

Result<Translation> GuestPageWalker::translate(uint64_t va) const
{
	if (!(regs_.cr0 & kCr0Pg)) {
		if (!ram_.contains(va, 1))
			return Error::invalid("address " + hex(va) + " (paging off) is outside guest RAM");
		return Translation{va, k4K, true, true, true};
	}
	if (!(regs_.efer & kEferLma) || !(regs_.cr4 & kCr4Pae))
		return Error::invalid("guest paging mode is not 4-level long mode (CR4 " + hex(regs_.cr4) + ", EFER " +
				      hex(regs_.efer) + ")");
	if (regs_.cr4 & kCr4La57)
		return Error::invalid("5-level paging is not supported");
	if (!canonical(va))
		return Error::invalid("address " + hex(va) + " is not canonical");

	bool nxe = regs_.efer & kEferNxe;
	Translation t{0, 0, true, true, true};
	uint64_t table = regs_.cr3 & kCr3Mask;
	for (int level = 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * static_cast<unsigned>(level - 1);
		auto entry = loadEntry(table, static_cast<unsigned>((va >> shift) & 511), level);
		if (!entry)
			return entry.error();
		uint64_t e = *entry;
		if (!(e & kPresent))
			return Error::invalid("address " + hex(va) + " is not mapped (" + levelName(level) + " entry not present)");
		if (!nxe && (e & kNoExecute))
			return Error::invalid(std::string(levelName(level)) + " entry for " + hex(va) + " has reserved bit 63 set");
		t.writable = t.writable && (e & kWritable);
		t.user = t.user && (e & kUser);
		t.executable = t.executable && !(nxe && (e & kNoExecute));

		bool leaf = level == 1 || (e & kLargePage);
		if (leaf && level == 4)
			return Error::invalid("PML4 entry for " + hex(va) + " has the page-size bit set (reserved)");
		if (!leaf) {
			table = e & kAddressMask;
			continue;
		}
		uint64_t size = uint64_t{1} << shift;
		// In a large-page entry, bit 12 is PAT and the bits between it and the page base are
		// reserved: the CPU faults on them, so the guest cannot be running through such a page.
		uint64_t base = e & kAddressMask & ~(size - 1);
		if (level > 1 && (e & kAddressMask & (size - 1) & ~k4K))
			return Error::invalid(std::string(levelName(level)) + " entry for " + hex(va) + " has reserved bits set");
		t.pageSize = size;
		t.gpa = base | (va & (size - 1));
		if (!ram_.contains(base + (va & (size - 1)), 1))
			return Error::invalid("address " + hex(va) + " maps to " + hex(t.gpa) + ", outside guest RAM");
		return t;
	}
	return Error::invalid("unreachable page walk end"); // the level 1 entry is always a leaf
}

Status GuestPageWalker::read(uint64_t va, std::span<uint8_t> out) const
{
	size_t done = 0;
	while (done < out.size()) {
		uint64_t at = va + done; // wraps like the CPU's linear address; canonical checks catch it
		auto t = translate(at);
		if (!t)
			return t.error();
		// Up to the end of this page, of the request, and of the RAM run that holds it.
		uint64_t inPage = t->pageSize - (at & (t->pageSize - 1));
		uint64_t chunk = std::min<uint64_t>(inPage, out.size() - done);
		if (!ram_.contains(t->gpa, chunk))
			return Error::invalid("address " + hex(at) + " maps to " + hex(t->gpa) + ", whose page leaves guest RAM");
		std::memcpy(out.data() + done, ram_.bytes.data() + t->gpa, chunk);
		done += chunk;
	}
	return {};
}

} // namespace spindle::sched::sampling

#pragma once

// A guest RAM image for the sampling tests, with a page-table builder: Spindle's own identity
// map of 2 MiB pages, or any 4 KiB / 2 MiB / 1 GiB mapping a test wants (non-identity ones too).

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "sched/sampling/guest_page_walk.h"

namespace spindle::sched::sampling::test {

class TestGuest
{
public:
	// RAM of `size` bytes; page tables are allocated downwards from tablesTop.
	explicit TestGuest(uint64_t size, uint64_t tablesTop = 0x100000) : bytes_(size), nextTable_(tablesTop)
	{
		cr3_ = newTable();
	}

	GuestRam ram() const { return GuestRam{bytes_}; }
	PagingRegisters regs() const
	{
		return {paging::kCr0Pg | 1, cr3_, paging::kCr4Pae, paging::kEferLma | paging::kEferNxe | (1u << 8)};
	}
	GuestPageWalker walker() const { return GuestPageWalker(ram(), regs()); }

	uint64_t cr3() const { return cr3_; }
	std::vector<uint8_t> &bytes() { return bytes_; }

	void put(uint64_t gpa, std::span<const uint8_t> data) { std::memcpy(bytes_.data() + gpa, data.data(), data.size()); }
	void put64(uint64_t gpa, uint64_t value) { std::memcpy(bytes_.data() + gpa, &value, 8); }
	uint64_t get64(uint64_t gpa) const
	{
		uint64_t value;
		std::memcpy(&value, bytes_.data() + gpa, 8);
		return value;
	}

	// The entry that maps va at `level` (1 = PTE ... 4 = PML4E), creating tables down to it.
	uint64_t entryGpa(uint64_t va, int level)
	{
		uint64_t table = cr3_;
		for (int l = 4; l > level; l--) {
			uint64_t gpa = table + ((va >> (12 + 9 * (l - 1))) & 511) * 8;
			uint64_t e = get64(gpa);
			if (!(e & paging::kPresent)) {
				e = newTable() | kTableFlags;
				put64(gpa, e);
			}
			table = e & 0x000ffffffffff000ull;
		}
		return table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
	}

	static constexpr uint64_t kTableFlags = paging::kPresent | paging::kWritable | paging::kUser;
	static constexpr uint64_t kPageFlags = paging::kPresent | paging::kWritable | paging::kUser;

	void map4K(uint64_t va, uint64_t gpa, uint64_t flags = kPageFlags) { put64(entryGpa(va, 1), gpa | flags); }
	void map2M(uint64_t va, uint64_t gpa, uint64_t flags = kPageFlags)
	{
		put64(entryGpa(va, 2), gpa | flags | paging::kLargePage);
	}
	void map1G(uint64_t va, uint64_t gpa, uint64_t flags = kPageFlags)
	{
		put64(entryGpa(va, 3), gpa | flags | paging::kLargePage);
	}
	// What vmm/boot/x86_boot.cpp gives Spindle's guests: VA = GPA over all of RAM, 2 MiB pages.
	void identityMap2M()
	{
		for (uint64_t a = 0; a < bytes_.size(); a += paging::k2M)
			map2M(a, a);
	}

private:
	uint64_t newTable()
	{
		nextTable_ -= paging::k4K;
		std::memset(bytes_.data() + nextTable_, 0, paging::k4K);
		return nextTable_;
	}

	std::vector<uint8_t> bytes_;
	uint64_t nextTable_;
	uint64_t cr3_ = 0;
};

} // namespace spindle::sched::sampling::test

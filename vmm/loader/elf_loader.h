#pragma once

// ELF64 loader for guests. parseElf() validates a file image completely before anything is
// copied (magic, class, machine, header bounds, segment bounds, overlaps, placement inside the
// loadable window, entry inside an executable segment); loadElf() then copies it into guest RAM.

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "vmm/kvm/guest_memory.h"

namespace spindle {

struct ElfSegment {
	uint64_t gpa;
	uint64_t fileOffset;
	uint64_t fileSize;
	uint64_t memSize;
	bool executable;
};

struct ElfImage {
	uint64_t entry;
	std::vector<ElfSegment> segments; // sorted by gpa, non-overlapping
	uint64_t lowest() const { return segments.front().gpa; }
	uint64_t end() const { return segments.back().gpa + segments.back().memSize; }
};

// windowStart/windowEnd: the guest physical range segments may occupy.
Result<ElfImage> parseElf(std::span<const uint8_t> file, uint64_t windowStart, uint64_t windowEnd);

Status loadElf(const ElfImage &image, std::span<const uint8_t> file, GuestMemory &memory);

} // namespace spindle

#pragma once

// ELF64 loader for guests. parseElf() validates a file image completely before anything is
// copied (magic, class, machine, type ET_EXEC, at most 64 program headers, no PT_INTERP or
// PT_DYNAMIC, header and segment bounds, no empty PT_LOAD, no overlaps, placement inside the
// loadable window, entry inside an executable segment, well-formed notes) and reads the Spindle
// note (which guest modes the image runs in); loadElf() then copies it into guest RAM.

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
	// SPINDLE_GUEST_MODE_F_* from the image's Spindle note; 0 without one (a ring-0 guest).
	uint32_t guestModes = 0;
	uint64_t lowest() const { return segments.front().gpa; }
	uint64_t end() const { return segments.back().gpa + segments.back().memSize; }
};

// windowStart/windowEnd: the guest physical range segments may occupy.
Result<ElfImage> parseElf(std::span<const uint8_t> file, uint64_t windowStart, uint64_t windowEnd);

Status loadElf(const ElfImage &image, std::span<const uint8_t> file, GuestMemory &memory);

} // namespace spindle

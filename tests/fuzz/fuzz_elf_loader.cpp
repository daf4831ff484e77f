// Fuzzes the ELF loader (vmm/loader) with whole files, as `spindle run --kernel` reads them.
//
// Contract: parseElf() either rejects the file with a one-line input error or returns an image
// whose segments (at least one) are sorted by address, non-overlapping and non-empty, each lies
// inside the window [1 MiB, 4 MiB) and has its file bytes inside the file and no more file bytes
// than memory bytes, and whose entry lies inside an executable segment. loadElf() of an accepted
// image into guest RAM as large as the window's end succeeds and leaves every segment holding its
// file bytes followed by zeros.

#include <cstring>
#include <vector>

#include "guest-kernels/abi/spindle_abi.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/loader/elf_loader.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

constexpr uint64_t kWindowStart = SPINDLE_KERNEL_MIN_GPA;
constexpr uint64_t kWindowEnd = 4ull << 20; // small guest RAM, so loading stays cheap

GuestMemory &guestRam()
{
	static GuestMemory memory = std::move(GuestMemory::create(kWindowEnd).value());
	return memory;
}

bool allZero(const uint8_t *bytes, uint64_t size)
{
	static const std::vector<uint8_t> zeros(kWindowEnd, 0);
	return std::memcmp(bytes, zeros.data(), size) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::span<const uint8_t> file(data, size); // libFuzzer's copy: exactly `size` bytes
	auto image = parseElf(file, kWindowStart, kWindowEnd);
	if (!image) {
		requireOneLineInputError(image.error());
		return 0;
	}

	const auto &segments = image->segments;
	FUZZ_REQUIRE(!segments.empty());
	bool entryInside = false;
	for (size_t i = 0; i < segments.size(); ++i) {
		const ElfSegment &s = segments[i];
		FUZZ_REQUIRE(s.memSize > 0 && s.fileSize <= s.memSize);
		FUZZ_REQUIRE(s.gpa >= kWindowStart && s.gpa < kWindowEnd && s.memSize <= kWindowEnd - s.gpa);
		FUZZ_REQUIRE(s.fileOffset <= size && s.fileSize <= size - s.fileOffset);
		if (i > 0)
			FUZZ_REQUIRE(segments[i - 1].gpa + segments[i - 1].memSize <= s.gpa);
		entryInside = entryInside || (s.executable && image->entry >= s.gpa && image->entry - s.gpa < s.memSize);
	}
	FUZZ_REQUIRE(entryInside);
	FUZZ_REQUIRE(image->lowest() >= kWindowStart && image->end() <= kWindowEnd);

	GuestMemory &memory = guestRam();
	for (const ElfSegment &s : segments) // stale bytes from earlier inputs must not pass for zeros
		std::memset(memory.hostBase() + s.gpa, 0xa5, s.memSize);
	FUZZ_REQUIRE(loadElf(*image, file, memory).ok());
	for (const ElfSegment &s : segments) {
		const uint8_t *loaded = memory.hostBase() + s.gpa;
		FUZZ_REQUIRE(s.fileSize == 0 || std::memcmp(loaded, data + s.fileOffset, s.fileSize) == 0);
		FUZZ_REQUIRE(allZero(loaded + s.fileSize, s.memSize - s.fileSize));
	}
	return 0;
}

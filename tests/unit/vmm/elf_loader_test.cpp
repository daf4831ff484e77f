#include <gtest/gtest.h>

#include <cstring>

#include "spindle_abi.h"
#include "tests/support/elf_builder.h"
#include "vmm/loader/elf_loader.h"

using namespace spindle;
using spindle::test::ElfBuilder;
using spindle::test::elfNote;
using spindle::test::noteSegment;

namespace {
constexpr uint64_t kWindowStart = 0x100000, kWindowEnd = 0x1000000;
constexpr uint64_t kLoad = 0x200000;

ElfBuilder validImage()
{
	return ElfBuilder::withCode(kLoad, {0xf4, 0xeb, 0xfd});
}

std::vector<uint8_t> modeBits(uint32_t modes)
{
	std::vector<uint8_t> bytes(4);
	std::memcpy(bytes.data(), &modes, 4);
	return bytes;
}

std::string errorOf(const std::vector<uint8_t> &file)
{
	auto image = parseElf(file, kWindowStart, kWindowEnd);
	return image ? std::string() : image.error().message();
}
} // namespace

TEST(ElfLoader, ParsesAValidImage)
{
	auto image = parseElf(validImage().build(), kWindowStart, kWindowEnd);

	ASSERT_TRUE(image) << image.error().message();
	EXPECT_EQ(image->entry, kLoad);
	ASSERT_EQ(image->segments.size(), 1u);
	EXPECT_EQ(image->segments[0].gpa, kLoad);
}

TEST(ElfLoader, LoadsBytesAndZeroesTheRestOfTheSegment)
{
	auto builder = validImage();
	builder.segments[0].memSize = 0x2000;
	auto file = builder.build();
	auto memory = GuestMemory::create(16 << 20);
	ASSERT_TRUE(memory);
	std::memset(memory->hostPointer(kLoad, 0x2000), 0xcc, 0x2000);
	auto image = parseElf(file, kWindowStart, kWindowEnd);
	ASSERT_TRUE(image);

	ASSERT_TRUE(loadElf(*image, file, *memory));

	EXPECT_EQ(memory->hostPointer(kLoad, 1)[0], 0xf4);
	EXPECT_EQ(memory->hostPointer(kLoad + 3, 1)[0], 0);
	EXPECT_EQ(memory->hostPointer(kLoad + 0x1fff, 1)[0], 0);
}

TEST(ElfLoader, RejectsATruncatedHeader)
{
	auto file = validImage().build();
	file.resize(20);
	EXPECT_NE(errorOf(file).find("too short"), std::string::npos);
}

TEST(ElfLoader, RejectsBadMagic)
{
	auto file = validImage().build();
	file[1] = 'X';
	EXPECT_NE(errorOf(file).find("magic"), std::string::npos);
}

TEST(ElfLoader, RejectsA32BitFile)
{
	auto builder = validImage();
	builder.header.e_ident[EI_CLASS] = ELFCLASS32;
	EXPECT_NE(errorOf(builder.build()).find("64-bit"), std::string::npos);
}

TEST(ElfLoader, RejectsAnotherMachine)
{
	auto builder = validImage();
	builder.header.e_machine = EM_AARCH64;
	EXPECT_NE(errorOf(builder.build()).find("x86-64"), std::string::npos);
}

TEST(ElfLoader, RejectsAPositionIndependentExecutable)
{
	auto builder = validImage();
	builder.header.e_type = ET_DYN;
	EXPECT_NE(errorOf(builder.build()).find("ET_EXEC"), std::string::npos);
}

TEST(ElfLoader, RejectsAProgramHeaderTablePastTheEnd)
{
	auto builder = validImage();
	builder.header.e_phoff = 1 << 20;
	EXPECT_NE(errorOf(builder.build()).find("program header table"), std::string::npos);
}

TEST(ElfLoader, RejectsAWrongProgramHeaderEntrySize)
{
	auto builder = validImage();
	builder.header.e_phentsize = 32;
	EXPECT_NE(errorOf(builder.build()).find("entry size"), std::string::npos);
}

TEST(ElfLoader, RejectsSegmentDataCutOffByTruncation)
{
	auto builder = validImage();
	builder.segments[0].bytes.resize(4096, 0x90);
	auto file = builder.build();
	file.resize(file.size() - 100);
	EXPECT_NE(errorOf(file).find("truncated"), std::string::npos);
}

TEST(ElfLoader, RejectsFileSizeLargerThanMemorySize)
{
	auto builder = validImage();
	builder.segments[0].bytes.resize(64, 0x90);
	builder.segments[0].memSize = 16;
	EXPECT_NE(errorOf(builder.build()).find("exceeds memory size"), std::string::npos);
}

TEST(ElfLoader, RejectsASegmentOutsideGuestRam)
{
	auto low = ElfBuilder::withCode(0x1000, {0xf4});
	auto high = ElfBuilder::withCode(kWindowEnd - 1, {0xf4, 0xf4});
	auto wrap = validImage();
	wrap.segments[0].memSize = UINT64_MAX - 10;
	EXPECT_NE(errorOf(low.build()).find("outside"), std::string::npos);
	EXPECT_NE(errorOf(high.build()).find("outside"), std::string::npos);
	EXPECT_NE(errorOf(wrap.build()).find("outside"), std::string::npos);
}

TEST(ElfLoader, RejectsOverlappingSegments)
{
	auto builder = validImage();
	builder.segments.push_back({kLoad + 2, {0x90, 0x90}});
	EXPECT_NE(errorOf(builder.build()).find("overlap"), std::string::npos);
}

TEST(ElfLoader, RejectsAnEntryOutsideExecutableSegments)
{
	auto outside = validImage();
	outside.entry = kLoad + 0x100000;
	auto dataOnly = validImage();
	dataOnly.segments[0].flags = PF_R | PF_W;
	EXPECT_NE(errorOf(outside.build()).find("entry point"), std::string::npos);
	EXPECT_NE(errorOf(dataOnly.build()).find("entry point"), std::string::npos);
}

TEST(ElfLoader, RejectsAFileWithoutLoadableSegments)
{
	ElfBuilder builder;
	builder.entry = kLoad;
	auto file = builder.build();
	// e_phnum == 0 is caught as a bad count; a table with only non-LOAD entries too.
	EXPECT_FALSE(errorOf(file).empty());
}

TEST(ElfLoader, RejectsDifferingVirtualAndPhysicalAddresses)
{
	auto file = validImage().build();
	Elf64_Phdr ph;
	std::memcpy(&ph, file.data() + sizeof(Elf64_Ehdr), sizeof(ph));
	ph.p_vaddr += 0xffffffff80000000ull;
	std::memcpy(file.data() + sizeof(Elf64_Ehdr), &ph, sizeof(ph));
	EXPECT_NE(errorOf(file).find("identity-maps"), std::string::npos);
}

TEST(ElfLoader, ReadsTheGuestModesFromTheSpindleNote)
{
	auto builder = validImage();
	builder.segments.push_back(noteSegment(elfNote("GNU", 3, {1, 2, 3, 4}))); // skipped
	builder.segments.push_back(noteSegment(
		elfNote(SPINDLE_NOTE_NAME, SPINDLE_NOTE_GUEST_MODES, modeBits(SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3))));

	auto image = parseElf(builder.build(), kWindowStart, kWindowEnd);

	ASSERT_TRUE(image) << image.error().message();
	EXPECT_EQ(image->guestModes, SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3);
	EXPECT_EQ(image->segments.size(), 1u) << "a note is not loaded";
}

TEST(ElfLoader, AnImageWithoutTheNoteDeclaresNoMode)
{
	auto image = parseElf(validImage().build(), kWindowStart, kWindowEnd);

	ASSERT_TRUE(image);
	EXPECT_EQ(image->guestModes, 0u);
}

TEST(ElfLoader, RejectsANoteThatRunsPastItsSegment)
{
	auto notes = elfNote(SPINDLE_NOTE_NAME, SPINDLE_NOTE_GUEST_MODES, modeBits(SPINDLE_GUEST_MODE_F_RING3));
	notes[4] = 200; // descsz far beyond the segment
	auto builder = validImage();
	builder.segments.push_back(noteSegment(notes));

	EXPECT_NE(errorOf(builder.build()).find("runs past the end of its segment"), std::string::npos);
}

TEST(ElfLoader, RejectsASpindleNoteWithAWrongSizeOrNoKnownMode)
{
	auto wrongSize = validImage();
	wrongSize.segments.push_back(noteSegment(elfNote(SPINDLE_NOTE_NAME, SPINDLE_NOTE_GUEST_MODES, {1, 0})));
	auto noMode = validImage();
	noMode.segments.push_back(noteSegment(elfNote(SPINDLE_NOTE_NAME, SPINDLE_NOTE_GUEST_MODES, modeBits(0x80))));

	EXPECT_NE(errorOf(wrongSize.build()).find("not 4"), std::string::npos);
	EXPECT_NE(errorOf(noMode.build()).find("no mode"), std::string::npos);
}

TEST(ElfLoader, RejectsAnInterpreterOrADynamicSection)
{
	for (uint32_t type : {uint32_t{PT_INTERP}, uint32_t{PT_DYNAMIC}}) {
		auto builder = validImage();
		spindle::test::ElfSegmentSpec segment{0, {'/', 'x', 0}};
		segment.type = type;
		builder.segments.push_back(segment);

		EXPECT_NE(errorOf(builder.build()).find("static executables only"), std::string::npos) << type;
	}
}

TEST(ElfLoader, RejectsMoreThanSixtyFourProgramHeaders)
{
	auto builder = validImage();
	for (int i = 0; i < 64; ++i)
		builder.segments.push_back(noteSegment(elfNote("X", 1, {})));

	EXPECT_NE(errorOf(builder.build()).find("outside 1..64"), std::string::npos);
}

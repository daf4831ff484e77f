// The guests embedded in the host binary: present, and loadable under the boot ABI (static
// ELF64 x86-64 executables whose segments lie at or above 1 MiB, entry inside executable code).

#include <cstring>
#include <elf.h>

#include <gtest/gtest.h>

#include "guest-kernels/abi/spindle_abi.h"
#include "guest-kernels/bundled.h"

namespace {

using spindle::BundledGuest;

TEST(BundledGuests, ListsTheThreeGuests)
{
	EXPECT_NE(spindle::findBundledGuest("hello"), nullptr);
	EXPECT_NE(spindle::findBundledGuest("triple-fault"), nullptr);
	EXPECT_NE(spindle::findBundledGuest("lockbench"), nullptr);
	EXPECT_EQ(spindle::findBundledGuest("nope"), nullptr);
	EXPECT_EQ(spindle::bundledGuests().size(), 3u);
}

TEST(BundledGuests, EveryGuestIsAStaticX86_64ElfLoadableAboveOneMiB)
{
	for (const BundledGuest &guest : spindle::bundledGuests()) {
		SCOPED_TRACE(std::string(guest.name));
		EXPECT_FALSE(guest.description.empty());
		ASSERT_GE(guest.elf.size(), sizeof(Elf64_Ehdr));
		Elf64_Ehdr header;
		std::memcpy(&header, guest.elf.data(), sizeof(header));
		ASSERT_EQ(std::memcmp(header.e_ident, ELFMAG, SELFMAG), 0);
		EXPECT_EQ(header.e_ident[EI_CLASS], ELFCLASS64);
		EXPECT_EQ(header.e_type, ET_EXEC);
		EXPECT_EQ(header.e_machine, EM_X86_64);
		ASSERT_LE(header.e_phoff + uint64_t{ header.e_phnum } * sizeof(Elf64_Phdr), guest.elf.size());

		bool entryInCode = false;
		int loads = 0;
		for (unsigned i = 0; i < header.e_phnum; i++) {
			Elf64_Phdr segment;
			std::memcpy(&segment, guest.elf.data() + header.e_phoff + i * sizeof(Elf64_Phdr),
				    sizeof(segment));
			EXPECT_NE(segment.p_type, uint32_t{ PT_INTERP });
			EXPECT_NE(segment.p_type, uint32_t{ PT_DYNAMIC });
			if (segment.p_type != PT_LOAD)
				continue;
			loads++;
			EXPECT_GE(segment.p_paddr, SPINDLE_KERNEL_MIN_GPA);
			EXPECT_LE(segment.p_offset + segment.p_filesz, guest.elf.size());
			if ((segment.p_flags & PF_X) && header.e_entry >= segment.p_vaddr &&
			    header.e_entry < segment.p_vaddr + segment.p_memsz)
				entryInCode = true;
		}
		EXPECT_GE(loads, 1);
		EXPECT_LE(loads, 2);
		EXPECT_TRUE(entryInCode);
	}
}

} // namespace

#include "common/format.h"
#include "vmm/loader/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "spindle_abi.h"

namespace spindle {

namespace {

constexpr uint16_t kMaxProgramHeaders = 64;

Status checkHeader(const Elf64_Ehdr &header, size_t fileSize)
{
	if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
		return Error::invalid("not an ELF file (bad magic)");
	if (header.e_ident[EI_CLASS] != ELFCLASS64)
		return Error::invalid("not a 64-bit ELF file (class " + std::to_string(header.e_ident[EI_CLASS]) + ")");
	if (header.e_ident[EI_DATA] != ELFDATA2LSB)
		return Error::invalid("not a little-endian ELF file");
	if (header.e_ident[EI_VERSION] != EV_CURRENT || header.e_version != EV_CURRENT)
		return Error::invalid("unknown ELF version");
	if (header.e_machine != EM_X86_64)
		return Error::invalid("ELF machine " + std::to_string(header.e_machine) + " is not x86-64");
	if (header.e_type != ET_EXEC)
		return Error::invalid("ELF type " + std::to_string(header.e_type) +
				      " is not a static executable (ET_EXEC); Spindle loads at fixed addresses");
	if (header.e_phentsize != sizeof(Elf64_Phdr))
		return Error::invalid("program header entry size " + std::to_string(header.e_phentsize) +
				      " is not " + std::to_string(sizeof(Elf64_Phdr)));
	if (header.e_phnum == 0 || header.e_phnum > kMaxProgramHeaders)
		return Error::invalid("program header count " + std::to_string(header.e_phnum) + " outside 1.." +
				      std::to_string(kMaxProgramHeaders));
	const uint64_t tableSize = uint64_t{header.e_phnum} * sizeof(Elf64_Phdr);
	if (header.e_phoff > fileSize || tableSize > fileSize - header.e_phoff)
		return Error::invalid("program header table (offset " + hex(header.e_phoff) + ") runs past the end of the file");
	return {};
}

Result<ElfSegment> checkSegment(const Elf64_Phdr &ph, size_t index, size_t fileSize, uint64_t windowStart,
				uint64_t windowEnd)
{
	const std::string what = "segment " + std::to_string(index);
	if (ph.p_filesz > ph.p_memsz)
		return Error::invalid(what + ": file size " + hex(ph.p_filesz) + " exceeds memory size " + hex(ph.p_memsz));
	if (ph.p_offset > fileSize || ph.p_filesz > fileSize - ph.p_offset)
		return Error::invalid(what + ": file data (offset " + hex(ph.p_offset) + ", size " + hex(ph.p_filesz) +
				      ") runs past the end of the file (the file may be truncated)");
	if (ph.p_memsz == 0)
		return Error::invalid(what + ": empty loadable segment");
	if (ph.p_vaddr != ph.p_paddr)
		return Error::invalid(what + ": virtual address " + hex(ph.p_vaddr) + " differs from physical " +
				      hex(ph.p_paddr) + " (Spindle identity-maps guest RAM)");
	if (ph.p_paddr < windowStart || ph.p_paddr >= windowEnd || ph.p_memsz > windowEnd - ph.p_paddr)
		return Error::invalid(what + " at " + hex(ph.p_paddr) + "+" + hex(ph.p_memsz) +
				      " lies outside the loadable guest RAM " + hex(windowStart) + "-" + hex(windowEnd));
	return ElfSegment{ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz, (ph.p_flags & PF_X) != 0};
}

// Walks the notes of one PT_NOTE segment; returns the Spindle note's mode bits (0: none).
Result<uint32_t> readSpindleNote(const Elf64_Phdr &ph, size_t index, std::span<const uint8_t> file)
{
	const std::string what = "note segment " + std::to_string(index);
	if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset)
		return Error::invalid(what + " runs past the end of the file");
	const uint64_t align = ph.p_align == 8 ? 8 : 4;
	auto padded = [align](uint64_t n) { return (n + align - 1) / align * align; };
	std::span<const uint8_t> notes = file.subspan(ph.p_offset, ph.p_filesz);
	uint32_t modes = 0;
	while (notes.size() >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr note;
		std::memcpy(&note, notes.data(), sizeof(note));
		notes = notes.subspan(sizeof(note));
		const uint64_t nameSpace = padded(note.n_namesz), descSpace = padded(note.n_descsz);
		if (nameSpace > notes.size() || descSpace > notes.size() - nameSpace)
			return Error::invalid(what + ": a note runs past the end of its segment");
		const std::string_view name(reinterpret_cast<const char *>(notes.data()), note.n_namesz);
		const std::span<const uint8_t> desc = notes.subspan(nameSpace, note.n_descsz);
		notes = notes.subspan(nameSpace + descSpace);
		if (name != std::string_view(SPINDLE_NOTE_NAME, sizeof(SPINDLE_NOTE_NAME)) ||
		    note.n_type != SPINDLE_NOTE_GUEST_MODES)
			continue;
		if (desc.size() != sizeof(uint32_t))
			return Error::invalid(what + ": the Spindle guest-mode note has " + std::to_string(desc.size()) +
					      " descriptor bytes, not 4");
		uint32_t bits;
		std::memcpy(&bits, desc.data(), sizeof(bits));
		modes = bits & (SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3);
		if (modes == 0)
			return Error::invalid(what + ": the Spindle guest-mode note names no mode Spindle knows");
	}
	return modes;
}

} // namespace

Result<ElfImage> parseElf(std::span<const uint8_t> file, uint64_t windowStart, uint64_t windowEnd)
{
	if (file.size() < sizeof(Elf64_Ehdr))
		return Error::invalid("file of " + std::to_string(file.size()) + " bytes is too short for an ELF header");
	Elf64_Ehdr header;
	std::memcpy(&header, file.data(), sizeof(header));
	if (auto status = checkHeader(header, file.size()); !status)
		return status.error();

	ElfImage image;
	image.entry = header.e_entry;
	for (size_t i = 0; i < header.e_phnum; ++i) {
		Elf64_Phdr ph;
		std::memcpy(&ph, file.data() + header.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return Error::invalid("segment " + std::to_string(i) + " is " +
					      (ph.p_type == PT_INTERP ? "PT_INTERP" : "PT_DYNAMIC") +
					      ": Spindle loads static executables only, with no interpreter or dynamic section");
		if (ph.p_type == PT_NOTE) {
			auto modes = readSpindleNote(ph, i, file);
			if (!modes)
				return modes.error();
			if (*modes)
				image.guestModes = *modes;
			continue;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		auto segment = checkSegment(ph, i, file.size(), windowStart, windowEnd);
		if (!segment)
			return segment.error();
		image.segments.push_back(*segment);
	}
	if (image.segments.empty())
		return Error::invalid("no loadable (PT_LOAD) segment");

	std::sort(image.segments.begin(), image.segments.end(),
		  [](const ElfSegment &a, const ElfSegment &b) { return a.gpa < b.gpa; });
	for (size_t i = 1; i < image.segments.size(); ++i) {
		const ElfSegment &prev = image.segments[i - 1];
		if (prev.gpa + prev.memSize > image.segments[i].gpa)
			return Error::invalid("segments at " + hex(prev.gpa) + " and " + hex(image.segments[i].gpa) + " overlap");
	}

	const bool entryOk = std::any_of(image.segments.begin(), image.segments.end(), [&](const ElfSegment &s) {
		return s.executable && image.entry >= s.gpa && image.entry - s.gpa < s.memSize;
	});
	if (!entryOk)
		return Error::invalid("entry point " + hex(image.entry) + " is not inside a loaded executable segment");
	return image;
}

Status loadElf(const ElfImage &image, std::span<const uint8_t> file, GuestMemory &memory)
{
	for (const ElfSegment &segment : image.segments) {
		uint8_t *target = memory.hostPointer(segment.gpa, segment.memSize);
		if (!target || segment.fileOffset + segment.fileSize > file.size())
			return Error::invalid("segment at " + hex(segment.gpa) + " does not fit guest RAM");
		std::memcpy(target, file.data() + segment.fileOffset, segment.fileSize);
		std::memset(target + segment.fileSize, 0, segment.memSize - segment.fileSize);
	}
	return {};
}

} // namespace spindle

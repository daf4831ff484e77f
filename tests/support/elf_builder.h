#pragma once

// Builds small ELF64 x86-64 images in memory for loader tests and for `--kernel` KVM tests.
// Each field is public so a test can break exactly one thing.

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace spindle::test {

struct ElfSegmentSpec {
	uint64_t address;
	std::vector<uint8_t> bytes;
	uint64_t memSize = 0; // 0: same as bytes.size()
	uint32_t flags = PF_R | PF_X;
	uint32_t type = PT_LOAD;
	uint64_t align = 0x1000;
};

// The bytes of one ELF note (4-byte padding, as for PT_NOTE with p_align 4).
inline std::vector<uint8_t> elfNote(const std::string &name, uint32_t type, const std::vector<uint8_t> &desc)
{
	auto pad = [](std::vector<uint8_t> &bytes) { bytes.resize((bytes.size() + 3) / 4 * 4, 0); };
	Elf64_Nhdr header{static_cast<Elf64_Word>(name.size() + 1), static_cast<Elf64_Word>(desc.size()), type};
	std::vector<uint8_t> out(sizeof(header));
	std::memcpy(out.data(), &header, sizeof(header));
	// Byte by byte: g++ 12 warns (array-bounds) about inserting an empty range here.
	for (char c : name)
		out.push_back(static_cast<uint8_t>(c));
	out.push_back(0);
	pad(out);
	for (uint8_t b : desc)
		out.push_back(b);
	pad(out);
	return out;
}

// A PT_NOTE segment (not loaded: address 0) holding the given note bytes.
inline ElfSegmentSpec noteSegment(std::vector<uint8_t> notes)
{
	ElfSegmentSpec segment{0, std::move(notes)};
	segment.type = PT_NOTE;
	segment.flags = PF_R;
	segment.align = 4;
	return segment;
}

struct ElfBuilder {
	Elf64_Ehdr header{};
	std::vector<ElfSegmentSpec> segments;
	uint64_t entry = 0;

	ElfBuilder()
	{
		std::memcpy(header.e_ident, ELFMAG, SELFMAG);
		header.e_ident[EI_CLASS] = ELFCLASS64;
		header.e_ident[EI_DATA] = ELFDATA2LSB;
		header.e_ident[EI_VERSION] = EV_CURRENT;
		header.e_type = ET_EXEC;
		header.e_machine = EM_X86_64;
		header.e_version = EV_CURRENT;
		header.e_phoff = sizeof(Elf64_Ehdr);
		header.e_ehsize = sizeof(Elf64_Ehdr);
		header.e_phentsize = sizeof(Elf64_Phdr);
	}

	// One executable segment at address holding code; entry at its start.
	static ElfBuilder withCode(uint64_t address, std::vector<uint8_t> code)
	{
		ElfBuilder builder;
		builder.segments.push_back({address, std::move(code)});
		builder.entry = address;
		return builder;
	}

	std::vector<uint8_t> build() const
	{
		Elf64_Ehdr h = header;
		h.e_entry = entry;
		h.e_phnum = static_cast<uint16_t>(segments.size());
		std::vector<uint8_t> out(sizeof(Elf64_Ehdr) + segments.size() * sizeof(Elf64_Phdr));
		std::memcpy(out.data(), &h, sizeof(h));
		for (size_t i = 0; i < segments.size(); ++i) {
			const ElfSegmentSpec &s = segments[i];
			Elf64_Phdr ph{};
			ph.p_type = s.type;
			ph.p_flags = s.flags;
			ph.p_offset = out.size();
			ph.p_vaddr = ph.p_paddr = s.address;
			ph.p_filesz = s.bytes.size();
			ph.p_memsz = s.memSize ? s.memSize : s.bytes.size();
			ph.p_align = s.align;
			std::memcpy(out.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), &ph, sizeof(ph));
			out.insert(out.end(), s.bytes.begin(), s.bytes.end());
		}
		return out;
	}
};

// Guest code (64-bit, loaded at 0x200000) that prints "OK" on the serial port, sends a PV EXIT
// record with code 7 from its mailbox, then halts.
inline std::vector<uint8_t> okExitSevenCode()
{
	return {
		0x66, 0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
		0xb0, 'O', 0xee,                          // mov al, 'O'; out dx, al
		0xb0, 'K', 0xee,                          // mov al, 'K'; out dx, al
		0xb0, '\n', 0xee,                         // mov al, '\n'; out dx, al
		0x48, 0x89, 0xfb,                         // mov rbx, rdi (vCPU index)
		0x48, 0xc1, 0xe3, 0x09,                   // shl rbx, 9 (x 512-byte mailbox)
		0x48, 0x81, 0xc3, 0x00, 0x00, 0x01, 0x00, // add rbx, 0x10000 (SPINDLE_MAILBOX_GPA)
		0xc7, 0x03, 0x53, 0x50, 0x56, 0x52,       // mov dword [rbx], "SPVR"
		0x66, 0xc7, 0x43, 0x04, 0x02, 0x00,       // mov word [rbx+4], SPINDLE_PV_EXIT
		0x66, 0xc7, 0x43, 0x06, 0x10, 0x00,       // mov word [rbx+6], 16
		0xc7, 0x43, 0x08, 0x07, 0x00, 0x00, 0x00, // mov dword [rbx+8], 7
		0xb8, 0x10, 0x00, 0x00, 0x00,             // mov eax, 16
		0x66, 0xba, 0x10, 0x05,                   // mov dx, 0x510
		0xef,                                     // out dx, eax
		0xf4,                                     // hlt
		0xeb, 0xfd,                               // jmp hlt
	};
}

// Guest code that prints 'x' on the serial port for ever, never a newline (lines of 4096 bytes).
inline std::vector<uint8_t> printForeverCode()
{
	return {
		0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
		0xb0, 'x',              // 1: mov al, 'x'
		0xee,                   // out dx, al
		0xeb, 0xfb,             // jmp 1b
	};
}

// Guest code (ring 0, loaded at 0x200000) that copies `record` into its own mailbox once, then
// submits it through the PV port for ever: a guest that floods one record (hostile-guest and
// WAIT/KICK tests; --timeout ends the run). The record's length must fit a mailbox.
inline std::vector<uint8_t> submitForeverCode(const std::vector<uint8_t> &record)
{
	const uint32_t n = static_cast<uint32_t>(record.size());
	auto le32 = [](std::vector<uint8_t> &out, uint32_t v) {
		for (int i = 0; i < 4; ++i)
			out.push_back(static_cast<uint8_t>(v >> (8 * i)));
	};
	std::vector<uint8_t> code = {
		0x48, 0x89, 0xfb,                         // mov rbx, rdi (vCPU index)
		0x48, 0xc1, 0xe3, 0x09,                   // shl rbx, 9 (x 512-byte mailbox)
		0x48, 0x81, 0xc3, 0x00, 0x00, 0x01, 0x00, // add rbx, 0x10000 (SPINDLE_MAILBOX_GPA)
		0x48, 0x8d, 0x35,                         // lea rsi, [rip + disp32] (the record, after the code)
	};
	const size_t dispAt = code.size();
	le32(code, 0);
	code.insert(code.end(), {0x48, 0x89, 0xdf}); // mov rdi, rbx
	code.push_back(0xb9);                        // mov ecx, n
	le32(code, n);
	code.insert(code.end(), {0xf3, 0xa4}); // rep movsb
	const size_t loop = code.size();
	code.push_back(0xb8); // mov eax, n
	le32(code, n);
	code.insert(code.end(), {0x66, 0xba, 0x10, 0x05, 0xef}); // mov dx, 0x510; out dx, eax
	code.push_back(0xeb);                                    // jmp loop
	code.push_back(static_cast<uint8_t>(static_cast<int>(loop) - static_cast<int>(code.size() + 1)));
	const uint32_t disp = static_cast<uint32_t>(code.size() - (dispAt + 4));
	std::memcpy(code.data() + dispAt, &disp, 4);
	code.insert(code.end(), record.begin(), record.end());
	return code;
}

// Guest code that spins for ever without exiting (for --timeout).
inline std::vector<uint8_t> spinForeverCode()
{
	return {0xf3, 0x90, 0xeb, 0xfc}; // pause; jmp pause
}

} // namespace spindle::test

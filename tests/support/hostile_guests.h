#pragma once

// Hostile guests for the KVM suite: tiny code blobs (64-bit, loaded at 0x200000, RDI = vCPU
// index) that do one thing for ever through MMIO, so they run natively in ring 3 under PVM
// (boot them with --guest-mode ring3) and in ring 0 anywhere. Each is a loop with no exit: the
// tests end them with --timeout or by Spindle's own limits.

#include <cstdint>
#include <cstring>
#include <vector>

namespace spindle::test::hostile {

namespace detail {

inline void le32(std::vector<uint8_t> &out, uint32_t v)
{
	for (int i = 0; i < 4; ++i)
		out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// jmp rel8 back to `target` from the end of `code`.
inline void jumpBack(std::vector<uint8_t> &code, size_t target)
{
	code.push_back(0xeb);
	code.push_back(static_cast<uint8_t>(static_cast<int>(target) - static_cast<int>(code.size() + 1)));
}

// rbx = this vCPU's mailbox (0x10000 + rdi * 512).
inline void mailboxToRbx(std::vector<uint8_t> &code)
{
	code.insert(code.end(), {0x48, 0x89, 0xfb, 0x48, 0xc1, 0xe3, 0x09, 0x48, 0x81, 0xc3, 0x00, 0x00, 0x01, 0x00});
}

// Copies the bytes that follow the code (patched in by finish()) to [rbx].
inline size_t copyRecordToRbx(std::vector<uint8_t> &code, uint32_t length)
{
	code.insert(code.end(), {0x48, 0x8d, 0x35}); // lea rsi, [rip + disp32]
	const size_t disp = code.size();
	le32(code, 0);
	code.insert(code.end(), {0x48, 0x89, 0xdf, 0xb9}); // mov rdi, rbx; mov ecx, length
	le32(code, length);
	code.insert(code.end(), {0xf3, 0xa4}); // rep movsb
	return disp;
}

inline void appendRecord(std::vector<uint8_t> &code, size_t dispAt, const std::vector<uint8_t> &record)
{
	const uint32_t disp = static_cast<uint32_t>(code.size() - (dispAt + 4));
	std::memcpy(code.data() + dispAt, &disp, 4);
	code.insert(code.end(), record.begin(), record.end());
}

// mov dword [0xd1000], imm32: ring the PV doorbell with the record's length.
inline void ringDoorbell(std::vector<uint8_t> &code, uint32_t length)
{
	code.insert(code.end(), {0xc7, 0x04, 0x25, 0x00, 0x10, 0x0d, 0x00});
	le32(code, length);
}

} // namespace detail

// Copies `record` into its mailbox once and submits it for ever through the MMIO doorbell.
inline std::vector<uint8_t> recordFlood(const std::vector<uint8_t> &record)
{
	std::vector<uint8_t> code;
	detail::mailboxToRbx(code);
	const size_t disp = detail::copyRecordToRbx(code, static_cast<uint32_t>(record.size()));
	const size_t loop = code.size();
	detail::ringDoorbell(code, static_cast<uint32_t>(record.size()));
	detail::jumpBack(code, loop);
	detail::appendRecord(code, disp, record);
	return code;
}

// Bytes 0x80..0xff to the console's THR for ever: binary, and never a newline.
inline std::vector<uint8_t> binaryConsoleFlood()
{
	std::vector<uint8_t> code = {0xba, 0x00, 0x00, 0x0d, 0x00, 0xb0, 0x80}; // mov edx, 0xd0000; mov al, 0x80
	const size_t loop = code.size();
	code.insert(code.end(), {0x88, 0x02, 0xfe, 0xc0, 0x0c, 0x80}); // mov [rdx], al; inc al; or al, 0x80
	detail::jumpBack(code, loop);
	return code;
}

// 32-bit writes to an MMIO address in the hole that no device claims, for ever.
inline std::vector<uint8_t> unclaimedMmioFlood()
{
	std::vector<uint8_t> code;
	const size_t loop = code.size();
	code.insert(code.end(), {0xc7, 0x04, 0x25, 0x00, 0x20, 0x0d, 0x00, 0x78, 0x56, 0x34, 0x12}); // mov dword [0xd2000], ...
	detail::jumpBack(code, loop);
	return code;
}

// Garbage from the TSC into every field of its own hint slot, for ever.
inline std::vector<uint8_t> garbageHints()
{
	std::vector<uint8_t> code = {
		0x48, 0x89, 0xfb, 0x48, 0xc1, 0xe3, 0x06,             // mov rbx, rdi; shl rbx, 6
		0x48, 0x81, 0xc3, 0x00, 0x00, 0x05, 0x00,             // add rbx, 0x50000
	};
	const size_t loop = code.size();
	code.insert(code.end(), {
		0x0f, 0x31,             // rdtsc
		0x89, 0x03,             // mov [rbx], eax      seq
		0x89, 0x53, 0x04,       // mov [rbx+4], edx    locks_held
		0x31, 0xd0,             // xor eax, edx
		0x89, 0x43, 0x08,       // mov [rbx+8], eax    waiting_on
		0x89, 0x43, 0x0c,       // mov [rbx+12], eax   waiting_lock
	});
	detail::jumpBack(code, loop);
	return code;
}

// vCPU 0 submits `record` for ever; every other vCPU rewrites vCPU 0's mailbox with TSC
// garbage for ever, so the host reads a mailbox that changes under it.
inline std::vector<uint8_t> mailboxRace(const std::vector<uint8_t> &record)
{
	std::vector<uint8_t> code = {0x85, 0xff, 0x75, 0x00}; // test edi, edi; jnz writer (patched)
	const size_t branch = code.size() - 1;
	detail::mailboxToRbx(code);
	const size_t disp = detail::copyRecordToRbx(code, static_cast<uint32_t>(record.size()));
	const size_t submit = code.size();
	detail::ringDoorbell(code, static_cast<uint32_t>(record.size()));
	detail::jumpBack(code, submit);
	code[branch] = static_cast<uint8_t>(code.size() - (branch + 1));
	code.insert(code.end(), {0xbb, 0x00, 0x00, 0x01, 0x00}); // writer: mov ebx, 0x10000
	const size_t scribble = code.size();
	// waits_on (offset 12) flips between garbage (out of range: malformed) and 0 or 1 (valid),
	// so the host sees both, whichever moment it copies the mailbox.
	code.insert(code.end(), {
		0x0f, 0x31,             // rdtsc
		0x89, 0x53, 0x0c,       // mov [rbx+12], edx
		0x83, 0xe0, 0x01,       // and eax, 1
		0x89, 0x43, 0x0c,       // mov [rbx+12], eax
	});
	detail::jumpBack(code, scribble);
	detail::appendRecord(code, disp, record);
	return code;
}

} // namespace spindle::test::hostile

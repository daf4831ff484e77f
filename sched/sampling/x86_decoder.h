#pragma once

// A small x86-64 instruction decoder for the sampling spin detector: the length of one
// instruction and the few facts the spin classifier needs about it (where control goes, whether
// it touches memory or flags, which general registers it reads and writes). It knows the
// integer instructions that compilers emit in spin loops and the code around them: the one-byte
// opcode map except string and x87 instructions, and the two-byte map's jumps, cmov/setcc,
// movzx/movsx, bit tests, cmpxchg/xadd, bswap, imul, nop/prefetch/endbr hints, fences, rdtsc,
// rdtscp, cpuid. SSE, AVX (VEX/EVEX), x87, string instructions and the three-byte maps are not
// decoded: the classifier treats a path through one of them as "not a spin", which is always
// the safe answer. 64-bit mode only (the guest's CS.L is 1 while it runs Spindle's long-mode
// boot state; a guest in another mode is simply not recognised as spinning).
//
// Guest bytes are hostile: every read is bounds-checked against the span, an instruction may not
// be longer than the architectural 15 bytes, and nothing is ever executed.

#include <cstdint>
#include <optional>
#include <span>

namespace spindle::sched::sampling {

// General registers as bits, in encoding order: rax = bit 0 ... r15 = bit 15.
using RegMask = uint16_t;
constexpr unsigned kRax = 0, kRcx = 1, kRdx = 2, kRbx = 3, kRsp = 4;
constexpr RegMask regBit(unsigned reg) { return static_cast<RegMask>(1u << (reg & 15)); }

constexpr unsigned kMaxInstructionLength = 15;

enum class Flow : uint8_t {
	Next,     // continues with the next instruction
	Jump,     // unconditional direct jump to `target`
	Branch,   // conditional direct jump: `target` or the next instruction
	Call,     // a call, direct or indirect (its callee is not followed)
	Return,   // ret
	Indirect, // a jump through a register or memory
	Stop,     // traps, halts, system calls, port I/O, far transfers, system instructions
};

struct Instruction {
	uint64_t address = 0;
	uint8_t length = 0;
	Flow flow = Flow::Next;
	uint64_t target = 0; // Jump, Branch, direct Call (wraps modulo 2^64 like the CPU)
	bool pause = false;  // F3 90
	bool readsMemory = false;
	bool writesMemory = false;
	bool atomic = false; // a locked read-modify-write: a LOCK prefix, or XCHG with memory
	bool readsFlags = false;
	bool writesFlags = false; // the arithmetic flags a Jcc can test
	RegMask regsRead = 0;     // register values the result depends on (zeroing idioms read none)
	RegMask regsWritten = 0;
	RegMask addressRegs = 0; // base and index of the memory operand; none when RIP-relative
};

// Decodes the instruction at bytes[0], which sits at guest virtual address `address`.
// nullopt: not one of the decoded forms, or the bytes end before the instruction does.
std::optional<Instruction> decodeInstruction(std::span<const uint8_t> bytes, uint64_t address);

} // namespace spindle::sched::sampling

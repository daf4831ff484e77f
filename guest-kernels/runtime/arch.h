#pragma once

// x86-64 instructions the guests need, as inline assembly. Guest-only. Port I/O, CLI/HLT and
// LIDT fault at CPL 3; MMIO, RDTSC and PAUSE work in both of Spindle's guest modes.

#include <stdint.h>

namespace spindle::guest {

inline void outb(uint16_t port, uint8_t value)
{
	asm volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

// The "memory" clobber matters: a PV record written to the mailbox with plain stores must be in
// memory before the OUT that makes the host read it.
inline void outl(uint16_t port, uint32_t value)
{
	asm volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

// MMIO stores. volatile and "memory" for the same reason as outl: the device reads the mailbox
// when this store exits to the host, so every earlier store must be done.
inline void mmioWrite8(uint64_t address, uint8_t value)
{
	asm volatile("movb %0, (%1)" : : "q"(value), "r"(address) : "memory");
}

inline void mmioWrite32(uint64_t address, uint32_t value)
{
	asm volatile("movl %0, (%1)" : : "r"(value), "r"(address) : "memory");
}

// The privilege level this code runs at (CS.RPL).
inline uint32_t currentCpl()
{
	uint16_t cs;
	asm volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3u;
}

inline uint64_t rdtsc()
{
	uint32_t lo, hi;
	// volatile: two reads in a row must not be merged, and must not move across other code.
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline void cpuPause()
{
	asm volatile("pause" : : : "memory");
}

struct CpuidResult {
	uint32_t eax, ebx, ecx, edx;
};

inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0)
{
	CpuidResult r;
	asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

// The last resort once the host was asked to stop this vCPU: HLT where it is allowed, PAUSE
// where it would fault.
[[noreturn]] inline void parkForever()
{
	if (currentCpl() == 0)
		for (;;)
			asm volatile("cli; hlt" : : : "memory");
	for (;;)
		asm volatile("pause" : : : "memory");
}

} // namespace spindle::guest

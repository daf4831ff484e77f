#pragma once

// x86-64 instructions the guests need, as inline assembly. Guest-only (ring 0 instructions).

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

[[noreturn]] inline void haltForever()
{
	for (;;)
		asm volatile("cli; hlt" : : : "memory");
}

} // namespace spindle::guest

#pragma once

// TSC tick <-> nanosecond conversion from the frequency in boot_info.tsc_khz. Split into a
// quotient and a remainder part so that nothing overflows 64 bits for any run length or
// frequency Spindle allows, without 128-bit division (which would need libgcc in the guests).

#include <stdint.h>

namespace spindle::guest {

struct TscClock {
	uint64_t khz; // ticks per millisecond; must not be 0

	uint64_t toNs(uint64_t ticks) const
	{
		return ticks / khz * 1000000 + ticks % khz * 1000000 / khz;
	}

	uint64_t fromNs(uint64_t ns) const
	{
		return ns / 1000000 * khz + ns % 1000000 * khz / 1000000;
	}
};

} // namespace spindle::guest

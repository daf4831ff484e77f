#pragma once

// Small formatting helpers for error messages.

#include <cstdint>
#include <cstdio>
#include <string>

namespace spindle {

// "0x1f": addresses and ports in messages.
inline std::string hex(uint64_t value)
{
	char buffer[24];
	snprintf(buffer, sizeof(buffer), "%#llx", static_cast<unsigned long long>(value));
	return buffer;
}

} // namespace spindle

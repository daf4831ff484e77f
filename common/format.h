#pragma once

// Small formatting helpers for messages, tables and hand-written JSON.

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

// "3.14" for fixed(3.14159, 2): numbers in tables and JSON, locale-independent.
inline std::string fixed(double value, int decimals)
{
	char buffer[64];
	snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
	return buffer;
}

} // namespace spindle

#pragma once

// Parsers for values that come from flags and files. Each rejects anything it does not fully
// understand (trailing garbage, overflow, empty input) with a message naming the input.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace spindle {

// A decimal unsigned integer, no sign, no spaces, within [min, max].
Result<uint64_t> parseUnsigned(std::string_view text, uint64_t min = 0, uint64_t max = UINT64_MAX);

// A byte size: digits with an optional K, M or G suffix (powers of 1024; "KiB" style also
// accepted). "64M" -> 67108864.
Result<uint64_t> parseSize(std::string_view text);

// A duration in nanoseconds: digits with a unit ns, us, ms or s (required), e.g. "500ns", "2ms".
// Fractions are accepted with a unit ("1.5ms"), to a precision of one nanosecond.
Result<uint64_t> parseDurationNs(std::string_view text);

// A CPU list in the kernel's syntax: "0-3,6,8-9". Sorted, duplicates removed, at most maxCpu.
Result<std::vector<int>> parseCpuList(std::string_view text, int maxCpu = 4095);

// Split on a separator, keeping empty fields.
std::vector<std::string> split(std::string_view text, char separator);

} // namespace spindle

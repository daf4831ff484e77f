#pragma once

// Reference readings of the number and duration syntaxes, written from their documentation
// (common/parse.h, guest-kernels/README.md) rather than from the parsers, with 128-bit
// arithmetic so that no value a parser might overflow on is out of reach. The targets compare the
// parsers with these.

#include <cstdint>
#include <optional>
#include <string_view>

namespace spindle::fuzz {

using Wide = unsigned __int128;

// Larger than any 64-bit value times any unit, small enough that Wide never overflows.
constexpr Wide kSaturated = Wide{ 1 } << 80; // times 2^30 (1 GiB, 1 s) still fits
constexpr Wide kU64Max = UINT64_MAX;

inline bool isDigit(char c)
{
	return c >= '0' && c <= '9';
}

// Digits only (at least one): their value, saturated at kSaturated; nullopt otherwise.
inline std::optional<Wide> decimalValue(std::string_view text)
{
	if (text.empty())
		return std::nullopt;
	Wide value = 0;
	for (char c : text) {
		if (!isDigit(c))
			return std::nullopt;
		value = value * 10 + static_cast<unsigned>(c - '0');
		if (value > kSaturated)
			value = kSaturated;
	}
	return value;
}

// DIGITS[.DIGITS]UNIT with UNIT ns, us, ms or s: the value in nanoseconds, keeping 9 fraction
// digits (one nanosecond of a second) and dropping the rest, saturated at kSaturated.
struct DurationReading {
	Wide ns;
	size_t fractionDigits;
};

inline std::optional<DurationReading> durationValue(std::string_view text)
{
	size_t i = 0;
	while (i < text.size() && isDigit(text[i]))
		++i;
	auto whole = decimalValue(text.substr(0, i));
	if (!whole)
		return std::nullopt;
	Wide fraction = 0, scale = 1;
	size_t fractionDigits = 0;
	if (i < text.size() && text[i] == '.') {
		++i;
		for (; i < text.size() && isDigit(text[i]); ++i, ++fractionDigits) {
			if (fractionDigits < 9) {
				fraction = fraction * 10 + static_cast<unsigned>(text[i] - '0');
				scale *= 10;
			}
		}
		if (fractionDigits == 0)
			return std::nullopt;
	}
	const std::string_view unit = text.substr(i);
	Wide unitNs;
	if (unit == "ns")
		unitNs = 1;
	else if (unit == "us")
		unitNs = 1'000;
	else if (unit == "ms")
		unitNs = 1'000'000;
	else if (unit == "s")
		unitNs = 1'000'000'000;
	else
		return std::nullopt;
	Wide ns = *whole >= kSaturated ? kSaturated : *whole * unitNs + fraction * unitNs / scale;
	return DurationReading{ ns > kSaturated ? kSaturated : ns, fractionDigits };
}

} // namespace spindle::fuzz

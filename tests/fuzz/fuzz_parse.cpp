// Fuzzes the flag and file value parsers of common/parse.h against reference readings of their
// documented syntax (oracles.h).
//
// Input: one selector byte, the parser's numeric parameters (little-endian), then the text.
// Contract, per parser:
//   parseUnsigned  accepts exactly the all-digit texts whose value lies in [min, max], and returns it;
//   parseSize      accepts exactly DIGITS plus a known suffix whose product fits 64 bits, and returns it;
//   parseDurationNs returns, when it accepts, the exact value (to the nanosecond) of a well-formed
//                  duration, and accepts every well-formed one (up to 9 fraction digits) that fits;
//   parseCpuList   accepts exactly the lists of in-bounds numbers and non-reversed ranges, and returns
//                  their union sorted, without duplicates, every CPU within [0, maxCpu];
//   split          returns pieces that join back to the text and hold no separator.
// Every rejection is an input error with a message.

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "common/parse.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/oracles.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

void checkUnsigned(ByteReader &in)
{
	const auto min = in.take<uint64_t>(), max = in.take<uint64_t>();
	const std::string_view text = in.restText();
	const auto parsed = parseUnsigned(text, min, max);
	const auto exact = decimalValue(text);
	const bool valid = exact && *exact <= kU64Max && *exact >= min && *exact <= max;
	FUZZ_REQUIRE(parsed.ok() == valid);
	if (parsed)
		FUZZ_REQUIRE(*parsed == *exact);
	else
		requireInputError(parsed.error());
}

void checkSize(ByteReader &in)
{
	const std::string_view text = in.restText();
	const auto parsed = parseSize(text);
	size_t digits = 0;
	while (digits < text.size() && isDigit(text[digits]))
		++digits;
	const auto value = decimalValue(text.substr(0, digits));
	const std::string_view suffix = text.substr(digits);
	Wide scale = 0;
	if (suffix.empty() || suffix == "B")
		scale = 1;
	else if (suffix == "K" || suffix == "k" || suffix == "KiB" || suffix == "KB")
		scale = Wide{ 1 } << 10;
	else if (suffix == "M" || suffix == "m" || suffix == "MiB" || suffix == "MB")
		scale = Wide{ 1 } << 20;
	else if (suffix == "G" || suffix == "g" || suffix == "GiB" || suffix == "GB")
		scale = Wide{ 1 } << 30;
	const bool valid = value && scale != 0 && *value * scale <= kU64Max;
	FUZZ_REQUIRE(parsed.ok() == valid);
	if (parsed)
		FUZZ_REQUIRE(*parsed == *value * scale);
	else
		requireInputError(parsed.error());
}

void checkDuration(ByteReader &in)
{
	const std::string_view text = in.restText();
	const auto parsed = parseDurationNs(text);
	const auto exact = durationValue(text);
	if (parsed) {
		FUZZ_REQUIRE(exact.has_value());
		FUZZ_REQUIRE(exact->ns <= kU64Max);
		FUZZ_REQUIRE(*parsed == exact->ns);
	} else {
		requireInputError(parsed.error());
		// More than 9 fraction digits are below the documented precision: rejecting them is fine.
		FUZZ_REQUIRE(!exact || exact->ns > kU64Max || exact->fractionDigits > 9);
	}
}

// The reference reading of "0-3,6,8-9": which CPUs it names, or nullopt when it is malformed.
std::optional<std::vector<bool>> cpuSet(std::string_view text, unsigned maxCpu)
{
	if (text.empty())
		return std::nullopt;
	std::vector<bool> set(maxCpu + 1, false);
	while (true) {
		const size_t comma = text.find(',');
		const std::string_view part = text.substr(0, comma);
		const size_t dash = part.find('-');
		const auto lo = decimalValue(part.substr(0, dash));
		const auto hi = dash == std::string_view::npos ? lo : decimalValue(part.substr(dash + 1));
		if (!lo || !hi || *lo > maxCpu || *hi > maxCpu || *hi < *lo)
			return std::nullopt;
		for (auto cpu = static_cast<unsigned>(*lo); cpu <= static_cast<unsigned>(*hi); ++cpu)
			set[cpu] = true;
		if (comma == std::string_view::npos)
			return set;
		text.remove_prefix(comma + 1);
	}
}

void checkCpuList(ByteReader &in)
{
	// Up to 4096, so the default bound (4095) and its neighbours come up often.
	const unsigned maxCpu = in.take<uint16_t>() % 4097;
	const std::string_view text = in.restText();
	const auto parsed = parseCpuList(text, static_cast<int>(maxCpu));
	const auto expected = cpuSet(text, maxCpu);
	FUZZ_REQUIRE(parsed.ok() == expected.has_value());
	if (!parsed) {
		requireInputError(parsed.error());
		return;
	}
	FUZZ_REQUIRE(!parsed->empty());
	FUZZ_REQUIRE(std::adjacent_find(parsed->begin(), parsed->end(), std::greater_equal<int>()) == parsed->end());
	std::vector<bool> got(maxCpu + 1, false);
	for (int cpu : *parsed) {
		FUZZ_REQUIRE(cpu >= 0 && static_cast<unsigned>(cpu) <= maxCpu);
		got[static_cast<unsigned>(cpu)] = true;
	}
	FUZZ_REQUIRE(got == *expected);
}

void checkSplit(ByteReader &in)
{
	const char separator = static_cast<char>(in.take<uint8_t>());
	const std::string_view text = in.restText();
	const std::vector<std::string> parts = split(text, separator);
	FUZZ_REQUIRE(parts.size() == static_cast<size_t>(std::count(text.begin(), text.end(), separator)) + 1);
	std::string joined;
	for (size_t i = 0; i < parts.size(); ++i) {
		FUZZ_REQUIRE(parts[i].find(separator) == std::string::npos);
		joined += (i ? std::string(1, separator) : std::string()) + parts[i];
	}
	FUZZ_REQUIRE(joined == text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	switch (in.take<uint8_t>() % 5) {
	case 0:
		checkUnsigned(in);
		break;
	case 1:
		checkSize(in);
		break;
	case 2:
		checkDuration(in);
		break;
	case 3:
		checkCpuList(in);
		break;
	default:
		checkSplit(in);
		break;
	}
	return 0;
}

#include "common/parse.h"

#include <algorithm>
#include <cmath>

namespace spindle {

namespace {

std::string quoted(std::string_view text)
{
	return "'" + std::string(text) + "'";
}

// Reads leading digits; returns how many were consumed, or 0 on overflow/none.
size_t readDigits(std::string_view text, uint64_t &value)
{
	value = 0;
	size_t i = 0;
	for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
		uint64_t digit = static_cast<uint64_t>(text[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return 0;
		value = value * 10 + digit;
	}
	return i;
}

} // namespace

Result<uint64_t> parseUnsigned(std::string_view text, uint64_t min, uint64_t max)
{
	uint64_t value;
	size_t n = readDigits(text, value);
	if (text.empty() || n != text.size())
		return Error::invalid("not a non-negative integer: " + quoted(text));
	if (value < min || value > max)
		return Error::invalid(quoted(text) + " is out of range [" + std::to_string(min) + ", " +
				      std::to_string(max) + "]");
	return value;
}

Result<uint64_t> parseSize(std::string_view text)
{
	uint64_t value;
	size_t n = readDigits(text, value);
	if (n == 0)
		return Error::invalid("not a size: " + quoted(text) + " (expected e.g. 512M or 2G)");
	std::string_view suffix = text.substr(n);
	uint64_t scale = 1;
	if (suffix.empty() || suffix == "B")
		scale = 1;
	else if (suffix == "K" || suffix == "k" || suffix == "KiB" || suffix == "KB")
		scale = 1ull << 10;
	else if (suffix == "M" || suffix == "m" || suffix == "MiB" || suffix == "MB")
		scale = 1ull << 20;
	else if (suffix == "G" || suffix == "g" || suffix == "GiB" || suffix == "GB")
		scale = 1ull << 30;
	else
		return Error::invalid("unknown size suffix in " + quoted(text) + " (use K, M or G)");
	if (value > UINT64_MAX / scale)
		return Error::invalid("size too large: " + quoted(text));
	return value * scale;
}

Result<uint64_t> parseDurationNs(std::string_view text)
{
	uint64_t whole;
	size_t n = readDigits(text, whole);
	if (n == 0)
		return Error::invalid("not a duration: " + quoted(text) + " (expected e.g. 500ns, 2us, 1ms, 3s)");
	std::string_view rest = text.substr(n);
	uint64_t fracNum = 0, fracDen = 1;
	if (!rest.empty() && rest[0] == '.') {
		rest.remove_prefix(1);
		size_t i = 0;
		for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && i < 9; ++i) {
			fracNum = fracNum * 10 + static_cast<uint64_t>(rest[i] - '0');
			fracDen *= 10;
		}
		if (i == 0)
			return Error::invalid("not a duration: " + quoted(text));
		rest.remove_prefix(i);
	}
	uint64_t unit;
	if (rest == "ns")
		unit = 1;
	else if (rest == "us")
		unit = 1000;
	else if (rest == "ms")
		unit = 1000000;
	else if (rest == "s")
		unit = 1000000000;
	else if (rest.empty())
		return Error::invalid("duration " + quoted(text) + " needs a unit (ns, us, ms or s)");
	else
		return Error::invalid("unknown duration unit in " + quoted(text) + " (use ns, us, ms or s)");
	const uint64_t fraction = fracNum * unit / fracDen;
	// whole * unit fits after the first check; the fraction can still carry the sum past 2^64
	// ("18446744073.9s" would wrap to 0.29 s).
	if (whole > UINT64_MAX / unit || whole * unit > UINT64_MAX - fraction)
		return Error::invalid("duration too large: " + quoted(text));
	return whole * unit + fraction;
}

Result<std::vector<int>> parseCpuList(std::string_view text, int maxCpu)
{
	if (text.empty())
		return Error::invalid("empty CPU list");
	std::vector<int> cpus;
	for (const std::string &part : split(text, ',')) {
		auto dash = part.find('-');
		std::string_view first = std::string_view(part).substr(0, dash);
		auto lo = parseUnsigned(first, 0, static_cast<uint64_t>(maxCpu));
		if (!lo)
			return Error::invalid("bad CPU list " + quoted(text) + ": " + lo.error().context());
		uint64_t hi = *lo;
		if (dash != std::string::npos) {
			auto last = parseUnsigned(std::string_view(part).substr(dash + 1), 0,
						  static_cast<uint64_t>(maxCpu));
			if (!last)
				return Error::invalid("bad CPU list " + quoted(text) + ": " + last.error().context());
			if (*last < *lo)
				return Error::invalid("bad CPU list " + quoted(text) + ": range " + part + " is reversed");
			hi = *last;
		}
		for (uint64_t c = *lo; c <= hi; ++c)
			cpus.push_back(static_cast<int>(c));
	}
	std::sort(cpus.begin(), cpus.end());
	cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
	return cpus;
}

std::vector<std::string> split(std::string_view text, char separator)
{
	std::vector<std::string> parts;
	size_t start = 0;
	while (true) {
		size_t pos = text.find(separator, start);
		if (pos == std::string_view::npos) {
			parts.emplace_back(text.substr(start));
			return parts;
		}
		parts.emplace_back(text.substr(start, pos - start));
		start = pos + 1;
	}
}

} // namespace spindle

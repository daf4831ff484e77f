#include "bench/harness/host_steal.h"

#include <charconv>

namespace spindle::bench {

namespace {

constexpr unsigned kStealField = 8; // user nice system idle iowait irq softirq steal

} // namespace

std::optional<uint64_t> stealTicks(std::string_view procStat)
{
	constexpr std::string_view kCpuLine = "cpu ";
	if (!procStat.starts_with(kCpuLine))
		return std::nullopt;
	std::string_view line = procStat.substr(0, procStat.find('\n'));
	size_t at = kCpuLine.size();
	uint64_t value = 0;
	for (unsigned field = 1; field <= kStealField; ++field) {
		while (at < line.size() && line[at] == ' ')
			++at;
		const char *begin = line.data() + at;
		const char *end = line.data() + line.size();
		const auto [next, ec] = std::from_chars(begin, end, value);
		if (ec != std::errc() || next == begin || (next != end && *next != ' '))
			return std::nullopt;
		at += static_cast<size_t>(next - begin);
	}
	return value;
}

std::optional<double> stealShare(std::optional<uint64_t> before, std::optional<uint64_t> after, long ticksPerSecond,
				 unsigned cpus, double wallSeconds)
{
	if (!before || !after || *after < *before || ticksPerSecond <= 0 || cpus == 0 || !(wallSeconds > 0))
		return std::nullopt;
	const double stolenSeconds = static_cast<double>(*after - *before) / static_cast<double>(ticksPerSecond);
	return stolenSeconds / (static_cast<double>(cpus) * wallSeconds);
}

} // namespace spindle::bench

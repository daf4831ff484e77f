#pragma once

// The deadline bandwidth the kernel's admission control counts as reserved in the root domain,
// as /sys/kernel/debug/sched/debug shows it (the first CPU's dl_bw->total_bw, 2^20 = one CPU).
// Tests compare it before and after a deadline boost ends: what Spindle reserves, it must give
// back (BENCHMARKS.md, "Deadline boosts on the PVM host").

#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace spindle::test {

inline std::optional<long> totalBandwidthIn(const std::string &path)
{
	std::ifstream debug(path);
	for (std::string line; std::getline(debug, line);)
		if (const size_t at = line.find("dl_bw->total_bw"); at != std::string::npos)
			return std::strtol(line.c_str() + line.find(':', at) + 1, nullptr, 10);
	return std::nullopt;
}

// Empty if this host does not show it (no debugfs, or not root). Where debugfs is not mounted
// (our PVM hosts boot without it), it is mounted on a private directory for the read and
// unmounted at once, so the host is left as found.
inline std::optional<long> deadlineBandwidthInUse()
{
	if (auto bw = totalBandwidthIn("/sys/kernel/debug/sched/debug"))
		return bw;
	char dir[] = "/tmp/spindle-debugfs-XXXXXX";
	if (!mkdtemp(dir))
		return std::nullopt;
	std::optional<long> bw;
	if (mount("debugfs", dir, "debugfs", 0, nullptr) == 0) {
		bw = totalBandwidthIn(std::string(dir) + "/sched/debug");
		umount2(dir, MNT_DETACH);
	}
	rmdir(dir);
	return bw;
}

// Polls until the bandwidth is back to `expected` (the kernel returns a leaving task's share at
// its 0-lag time, up to a period later) or half a second has passed; returns the last value read.
inline long deadlineBandwidthSettlingTo(long expected)
{
	long now = expected;
	for (int i = 0; i < 50; ++i) {
		now = deadlineBandwidthInUse().value_or(expected);
		if (now == expected)
			break;
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	return now;
}

} // namespace spindle::test

#pragma once

// Time the host took from this machine's CPUs while a run ran: the steal column of /proc/stat.
// On a cloud VM (the PVM machines this is developed on are one) the hypervisor below can run
// something else on our CPUs; every thread of a run then slows, the alone reference runs too,
// and an efficiency or a co-runner share from such a run says nothing about the policy. The
// bench records it per run so those runs can be told apart (BENCHMARKS.md, "Host steal").

#include <cstdint>
#include <optional>
#include <string_view>

namespace spindle::bench {

// A run is flagged as stolen when the host took more than this part of all CPUs' time.
inline constexpr double kStolenRunShare = 0.05;

// The steal field (the 8th number) of the aggregate "cpu " line of a /proc/stat text, in clock
// ticks (USER_HZ). nullopt when the line is missing, malformed, or too short to have the field
// (kernels before 2.6.11).
std::optional<uint64_t> stealTicks(std::string_view procStat);

// The part of all CPUs' time the host took between two readings: steal ticks over cpus x wall
// time. nullopt when a reading is missing, the counter went backwards, or there is no time.
std::optional<double> stealShare(std::optional<uint64_t> before, std::optional<uint64_t> after, long ticksPerSecond,
				 unsigned cpus, double wallSeconds);

} // namespace spindle::bench

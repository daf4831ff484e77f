#pragma once

// The host CPUs a scheduler may use (its pool).

#include <vector>

#include "common/result.h"

namespace spindle::sched {

// Checks a pool against the online CPUs and the CPUs this process may use. An empty pool means
// "every CPU that is both". Pure, for tests; checkPoolCpus() reads the system.
Result<std::vector<int>> checkPoolCpus(std::vector<int> pool, const std::vector<int> &online,
				       const std::vector<int> &allowed);
Result<std::vector<int>> checkPoolCpus(std::vector<int> pool);
// /sys/devices/system/cpu/online.
Result<std::vector<int>> readOnlineCpus();

} // namespace spindle::sched

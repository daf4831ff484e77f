#include "sched/pool.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "common/parse.h"

namespace spindle::sched {

Result<std::vector<int>> checkPoolCpus(std::vector<int> pool, const std::vector<int> &online,
				       const std::vector<int> &allowed)
{
	auto usable = [&](int cpu) {
		return std::find(online.begin(), online.end(), cpu) != online.end() &&
		       std::find(allowed.begin(), allowed.end(), cpu) != allowed.end();
	};
	if (pool.empty()) {
		for (int cpu : online)
			if (usable(cpu))
				pool.push_back(cpu);
		if (pool.empty())
			return Error::invalid("no CPU is both online and allowed to this process");
		return pool;
	}
	std::sort(pool.begin(), pool.end());
	pool.erase(std::unique(pool.begin(), pool.end()), pool.end());
	for (int cpu : pool) {
		if (std::find(online.begin(), online.end(), cpu) == online.end())
			return Error::invalid("pool CPU " + std::to_string(cpu) + " does not exist or is offline");
		if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end())
			return Error::invalid("pool CPU " + std::to_string(cpu) +
					      " is not in this process's affinity (taskset/cpuset)");
	}
	return pool;
}

Result<std::vector<int>> readOnlineCpus()
{
	std::ifstream in("/sys/devices/system/cpu/online");
	std::string text;
	if (!in || !std::getline(in, text))
		return Error(ENOENT, "cannot read /sys/devices/system/cpu/online");
	auto online = parseCpuList(text);
	if (!online)
		return online.error().wrap("/sys/devices/system/cpu/online");
	return online;
}

Result<std::vector<int>> checkPoolCpus(std::vector<int> pool)
{
	auto online = readOnlineCpus();
	if (!online)
		return online.error();
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return Error::fromErrno("sched_getaffinity");
	std::vector<int> allowed;
	for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
		if (CPU_ISSET(cpu, &set))
			allowed.push_back(cpu);
	return checkPoolCpus(std::move(pool), *online, allowed);
}

} // namespace spindle::sched

#include "vmm/cli/bench_command.h"

#include <spdlog/spdlog.h>

namespace spindle {

int runBenchCommand(const std::vector<std::string> &)
{
	spdlog::error("spindle bench is not built yet");
	return 2;
}

} // namespace spindle

#pragma once

// `spindle bench`: the overcommit benchmark matrix (policies x overcommit x locks x critical
// sections), run in-process through runSession().

#include <string>
#include <vector>

namespace spindle {

// args: everything after "bench". Returns the exit status.
int runBenchCommand(const std::vector<std::string> &args);

} // namespace spindle

#pragma once

// `spindle bench`: the overcommit benchmark matrix (policies x overcommit x locks x critical
// sections), run in-process through runSession(). The pure parts (matrix, arithmetic, writers)
// live in bench/harness; this file turns each planned run into RunOptions, runs it, measures
// the scheduler's CPU time, and keeps the output files current after every run.

#include <string>
#include <vector>

namespace spindle {

// args: everything after "bench". Returns the exit status: 0 when the matrix ran to its end
// (failed runs are recorded, not fatal), 2 for bad input or an unwritable output directory,
// 130 when interrupted (the files then hold every finished run).
int runBenchCommand(const std::vector<std::string> &args);

} // namespace spindle

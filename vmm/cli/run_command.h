#pragma once

// `spindle run`: checks the output paths, runs the session, and owns what the user sees after
// it: the result tables, the timeout/interrupt lines, --stats, --metrics and --results, and the
// exit status.

#include "vmm/cli/run_options.h"

namespace spindle {

int runRunCommand(const RunOptions &options);

} // namespace spindle

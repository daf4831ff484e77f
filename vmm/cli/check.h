#pragma once

// `spindle check`: what this host offers Spindle, in the spirit of virt-host-validate.

#include <string>
#include <vector>

namespace spindle {

// Prints one line per check (or, with --json, one JSON object); returns 0 when KVM itself is
// usable, 1 otherwise, 2 for a bad option.
int runHostCheck(const std::vector<std::string> &args);

} // namespace spindle

#pragma once

// "Say a thing once": a condition that repeats (the PLE detector off, an unclaimed port, a
// malformed PV record) is reported once per process, however many VMs or `spindle bench` runs
// meet it; the repeats are counted in the metrics instead.

#include <string_view>

namespace spindle {

// True the first time this key is asked about in this process; thread-safe.
bool firstTimeInProcess(std::string_view key);

} // namespace spindle

#pragma once

// JSON string literals for the hand-written JSON writers (metrics, results, traces, bench
// outputs): no JSON library is available here. Names and texts can come from flags and guests,
// so every string goes through these.

#include <string>
#include <string_view>

namespace spindle {

// Appends text as a quoted JSON string, escaping quotes, backslashes and control characters.
void appendJsonString(std::string &out, std::string_view text);

// The same, returned.
std::string jsonString(std::string_view text);

} // namespace spindle

#pragma once

// The one owner of SIGINT and SIGTERM: installed once by main() before any command runs, for
// `spindle run` and `spindle bench` alike. The handler only stores the signal number; sessions
// read it through a StopToken, and a bench matrix checks it between runs, so no signal falls
// between two sessions and none is ever forgotten (the flag is never cleared).

#include <atomic>

namespace spindle {

void installStopSignalHandlers();
// Non-zero once SIGINT or SIGTERM arrived: which one (or kSeccompStopValue after a seccomp
// violation, which sets the same flag).
const std::atomic<int> &stopSignal();

} // namespace spindle

#pragma once

// The one owner of SIGINT, SIGTERM and SIGHUP: installed once by main() before any command runs,
// for `spindle run` and `spindle bench` alike. SIGHUP is among them because a closing terminal
// (or a dropped ssh session) sends it, and its default action would kill Spindle with every
// thread still pinned, boosted or niced; handled, it stops the run like the other two.
// The handler only stores the signal number; sessions read it through a StopToken, and a bench
// matrix checks it between runs, so no signal falls between two sessions and none is ever
// forgotten (the flag is never cleared).

#include <atomic>

namespace spindle {

void installStopSignalHandlers();
// Non-zero once SIGINT, SIGTERM or SIGHUP arrived: which one (or kSeccompStopValue after a seccomp
// violation, which sets the same flag).
const std::atomic<int> &stopSignal();

} // namespace spindle

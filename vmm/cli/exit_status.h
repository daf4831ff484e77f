#pragma once

// Spindle's exit statuses, and how a session's outcome maps to one (README, "Exit status").

#include "vmm/runtime/session.h"

namespace spindle {

constexpr int kExitVmFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;
constexpr int kExitInterrupted = 130;

// With one VM, the guest's exit code; with several, the first non-zero one. A VM that crashed,
// halted without an exit code or whose results failed their checks: 1. --timeout: 124. A
// signal: 130.
int exitStatusFor(const SessionReport &report);
// For a session that did not run: 2 for bad input, 1 otherwise.
int exitStatusFor(const Error &error);

} // namespace spindle

#pragma once

// seccomp allow-lists per thread role, installed by each thread for itself once its set-up is
// done and before the guest runs (Firecracker's model). A system call outside the list traps:
// the SIGSYS handler writes one line naming the thread role and the call, makes the call fail
// with EPERM, and asks the run to stop through the same flag SIGINT sets, so the session stops
// every VM, restores every thread and writes its outputs as for any other stop.
//
// Roles and why each call is there: sched/README.md has the scheduler's, this file's .cpp the
// table itself; README.md documents --seccomp.

#include <atomic>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace spindle {

enum class SeccompMode { Off, Log, On }; // on: trap; log: allow, but the kernel logs the call

enum class ThreadRole { Vcpu, Scheduler, Console, Main };
std::string_view threadRoleName(ThreadRole role); // "vCPU", "scheduler", "console", "main"

Result<SeccompMode> parseSeccompMode(std::string_view text); // on, log, off

// Where a violation asks the run to stop (the CLI's stop flag), and with which value. Set once,
// before any filter is installed.
void setSeccompStopFlag(std::atomic<int> *flag);
constexpr int kSeccompStopValue = 31; // SIGSYS: the stop token then reads as a seccomp stop

// Installs the role's filter on the calling thread (and what it creates later). Off: nothing.
Status installSeccompFilter(ThreadRole role, SeccompMode mode);

// Whether this kernel and libseccomp can install a filter (tried on a short-lived thread).
Status seccompAvailable();

// SPINDLE_SECCOMP_SELFTEST=vcpu|scheduler|console|main: that role's thread makes one forbidden
// call once its filter is in, so the tests can watch a violation being caught (nullopt: none).
std::optional<ThreadRole> seccompSelfTestRole();
void seccompSelfTest(ThreadRole role, SeccompMode mode); // the call, if the self-test asks for role

} // namespace spindle

#pragma once

// What a session runs: its VMs and every knob of the run. Owned by the runtime; the CLI fills it
// from the command line (vmm/cli/run_options.h extends it with what only the CLI uses), and
// `spindle bench` builds one per run.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/runtime/guest_mode.h"
#include "vmm/runtime/seccomp_filter.h"

namespace spindle {

// One VM as asked for (the runtime resolves it into a VmConfig: image bytes, mode, features).
struct VmSpec {
	std::string guest;                        // bundled guest name, or "" when kernelPath is set
	std::string kernelPath;                   // --kernel / kernel=
	unsigned cpus = 1;
	uint64_t memBytes = 64ull << 20;
	std::vector<std::string> args;            // guest arguments
	std::string name;                         // defaults to vm<index>
	std::optional<GuestModeChoice> guestMode; // guest-mode=; unset: the session's guestMode
};

enum class SerialMode { Stdout, File, Off };

struct SessionConfig {
	std::vector<VmSpec> vms;
	std::string policy = "cfs";
	std::vector<int> pcpus;           // empty: every CPU this process may use
	SerialMode serial = SerialMode::Stdout;
	std::string serialPath;
	std::string tracePath;
	// Console output a VM may produce in one run; past it its lines are counted, not shown.
	uint64_t consoleLimitBytes = 16ull << 20;
	uint64_t timeoutMs = 0;           // 0: no limit
	bool pauseExits = true;           // --ple on|off
	GuestModeChoice guestMode = GuestModeChoice::Auto;
	uint32_t spinThreshold = 2048;
	// Per-thread seccomp allow-lists (vmm/runtime/seccomp_filter.h). Off by default only in
	// sanitizer builds, whose runtimes make calls of their own.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SeccompMode seccomp = SeccompMode::Off;
#else
	SeccompMode seccomp = SeccompMode::On;
#endif
	// Scheduler tuning flags, passed through by name to the scheduler's own parser.
	std::vector<std::pair<std::string, std::string>> schedFlags;
};

} // namespace spindle

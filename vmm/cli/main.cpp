// spindle: the command-line entry point. Parses the subcommand, sets up logging, and turns every
// error into one line and an exit status.

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bench/harness/version.h"
#include "guest-kernels/bundled.h"
#include "vmm/cli/bench_command.h"
#include "vmm/cli/check.h"
#include "vmm/cli/exit_status.h"
#include "vmm/cli/run_command.h"
#include "vmm/cli/run_options.h"
#include "vmm/cli/signals.h"
#include "vmm/runtime/session.h"

namespace {

constexpr const char *kUsage = R"(Usage: spindle COMMAND [OPTIONS]

A lightweight KVM virtual machine monitor with a user-level vCPU scheduler that reacts to
spin waits (lock-holder and lock-waiter preemption) in overcommitted SMP guests.

Commands:
  run      boot one or more guests (spindle run --help)
  bench    run the overcommit benchmark matrix (spindle bench --help)
  check    measure what this host offers: KVM backend, PAUSE exits, guest speed, scheduling
  guests   list the bundled guests
  version  print the version (git describe of the build's source tree; also --version)
  help     show this help

Without /dev/kvm, run Spindle inside the emulated KVM host: scripts/kvm-host -- spindle ...
)";

int listGuests()
{
	for (const auto &guest : spindle::bundledGuests())
		std::printf("  %-14.*s %.*s\n", static_cast<int>(guest.name.size()), guest.name.data(),
			    static_cast<int>(guest.description.size()), guest.description.data());
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	// A reader that goes away (`spindle run ... | head -1`) must not kill Spindle before it has
	// restored every thread it changed: writes then fail with EPIPE instead.
	signal(SIGPIPE, SIG_IGN);
	// From the very start: a signal during set-up stops the run as cleanly as one during it.
	spindle::installStopSignalHandlers();
	auto logger = spdlog::stderr_color_mt("spindle");
	logger->set_pattern("spindle: %^%l%$: %v");
	spdlog::set_default_logger(logger);

	std::vector<std::string> args(argv + 1, argv + argc);
	if (args.empty()) {
		std::fputs(kUsage, stderr);
		return spindle::kExitUsage;
	}
	const std::string command = args.front();
	args.erase(args.begin());

	if (command == "help" || command == "--help" || command == "-h") {
		std::fputs(kUsage, stdout);
		return 0;
	}
	if (command == "version" || command == "--version") {
		if (!args.empty()) {
			spdlog::error("{} takes no arguments (got '{}')", command, args.front());
			return spindle::kExitUsage;
		}
		std::printf("spindle %s\n", spindle::bench::spindleVersion());
		return 0;
	}
	if (command == "check")
		return spindle::runHostCheck(args);
	if (command == "guests")
		return listGuests();
	if (command == "bench")
		return spindle::runBenchCommand(args);
	if (command != "run") {
		spdlog::error("unknown command '{}' (expected run, bench, check, guests, version or help)", command);
		return spindle::kExitUsage;
	}

	auto options = spindle::parseRunOptions(args, [](const std::string &name) {
		return spindle::isSchedulerFlag(name);
	});
	if (!options) {
		spdlog::error("{}", options.error().message());
		return spindle::kExitUsage;
	}
	if (options->help) {
		std::fputs(spindle::runUsage(spindle::schedulerHelp(), spindle::schedulerBoundsHelp()).c_str(), stdout);
		return 0;
	}
	spdlog::set_level(spdlog::level::from_str(options->logLevel));
	return spindle::runRunCommand(*options);
}

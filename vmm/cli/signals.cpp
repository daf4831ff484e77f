#include "vmm/cli/signals.h"

#include <signal.h>

#include "vmm/runtime/seccomp_filter.h"

namespace spindle {

namespace {
std::atomic<int> gStopSignal{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
} // namespace

void installStopSignalHandlers()
{
	setSeccompStopFlag(&gStopSignal);
	struct sigaction action {};
	action.sa_handler = [](int signal) { gStopSignal.store(signal); };
	sigemptyset(&action.sa_mask);
	for (int number : {SIGINT, SIGTERM, SIGHUP})
		sigaction(number, &action, nullptr);
}

const std::atomic<int> &stopSignal()
{
	return gStopSignal;
}

} // namespace spindle

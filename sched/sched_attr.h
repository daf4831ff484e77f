#pragma once

// The kernel's struct sched_attr and the flags Spindle uses (no glibc wrapper in Debian 12).

#include <cstdint>

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

namespace spindle::sched {

struct SchedAttr {
	uint32_t size = sizeof(SchedAttr);
	uint32_t policy = 0;
	uint64_t flags = 0;
	int32_t nice = 0;
	uint32_t priority = 0;
	uint64_t runtime = 0;
	uint64_t deadline = 0;
	uint64_t period = 0;
};

} // namespace spindle::sched

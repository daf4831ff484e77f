#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Baseline: stock Linux decides; the core still detects and counts. Nothing to implement, so no
// .cpp file.
class CfsPolicy : public Policy
{
};

} // namespace spindle::sched

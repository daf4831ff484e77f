#pragma once

#include "sched/policy.h"

namespace spindle::sched {

// Baseline: stock Linux decides; the core still detects and counts. Nothing to implement, so no
// .cpp file. It answers no spin wait, so spins keep no fast tick: stock Linux has no scheduler
// thread waking every millisecond, and a baseline that paid for one (2-4% of a CPU while VMs
// spin) would flatter every policy measured against it.
class CfsPolicy : public Policy
{
public:
	bool answersSpins(const SchedCore &) const override { return false; }
};

} // namespace spindle::sched

// cfs: the baseline detects and counts, and does nothing.

#include <gtest/gtest.h>

#include "harness.h"

namespace spindle::sched::test {
namespace {

using S = VcpuState;

TEST(CfsPolicy, SpinWaitIsCountedButNothingIsDone)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.setStates(vm, { S::Running, S::Runnable }, { 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);

	EXPECT_TRUE(h.take().empty());
	EXPECT_EQ(h.core.vcpu({ vm, 0 }).counters.spins[0], 1u);
}

} // namespace
} // namespace spindle::sched::test

#include <gtest/gtest.h>

#include "vmm/runtime/guest_results.h"

using namespace spindle;

namespace {
GuestResults lockResults(uint64_t a, uint64_t b, uint64_t counter)
{
	GuestResults results;
	results.vcpus.resize(2);
	spindle_pv_result_vcpu v{};
	v.mode = SPINDLE_MODE_LOCK;
	v.ops = a;
	results.vcpus[0] = v;
	v.ops = b;
	results.vcpus[1] = v;
	spindle_pv_result_vm vm{};
	vm.mode = SPINDLE_MODE_LOCK;
	vm.lock = SPINDLE_LOCK_TICKET;
	vm.duration_ns = 1000000000;
	vm.total_ops = a + b;
	vm.shared_counter = counter;
	results.vm = vm;
	return results;
}
} // namespace

TEST(GuestResults, ConsistentLockResultsPass)
{
	EXPECT_TRUE(checkGuestResults(lockResults(10, 20, 30)));
}

TEST(GuestResults, NoResultsAtAllPass)
{
	GuestResults results;
	results.vcpus.resize(4);
	EXPECT_TRUE(checkGuestResults(results));
}

TEST(GuestResults, CounterMismatchIsAMutualExclusionViolation)
{
	auto check = checkGuestResults(lockResults(10, 20, 29));
	ASSERT_FALSE(check);
	EXPECT_NE(check.error().message().find("mutual exclusion"), std::string::npos);
}

TEST(GuestResults, AVcpuWithoutProgressFails)
{
	auto check = checkGuestResults(lockResults(10, 0, 10));
	ASSERT_FALSE(check);
	EXPECT_NE(check.error().message().find("no progress"), std::string::npos);
}

TEST(GuestResults, MissingVcpuRecordOrSummaryFails)
{
	auto missingVcpu = lockResults(1, 1, 2);
	missingVcpu.vcpus[1].reset();
	auto missingSummary = lockResults(1, 1, 2);
	missingSummary.vm.reset();
	EXPECT_FALSE(checkGuestResults(missingVcpu));
	EXPECT_FALSE(checkGuestResults(missingSummary));
}

TEST(GuestResults, TotalThatDisagreesWithTheVcpusFails)
{
	auto results = lockResults(10, 20, 30);
	results.vm->total_ops = 31;
	EXPECT_FALSE(checkGuestResults(results));
}

TEST(GuestResults, ThroughputIsOpsPerSecondOfGuestTime)
{
	EXPECT_DOUBLE_EQ(opsPerSecond(lockResults(10, 20, 30)), 30.0);
}

TEST(LatencyHistogram, PercentilesAreBucketUpperBounds)
{
	uint64_t hist[SPINDLE_LATENCY_BUCKETS] = {};
	hist[3] = 90; // [8, 16) ns
	hist[10] = 10; // [1024, 2048) ns

	EXPECT_EQ(histogramPercentileNs(hist, 50), 15u);
	EXPECT_EQ(histogramPercentileNs(hist, 99), 2047u);
	EXPECT_EQ(histogramMaxNs(hist), 2047u);
}

TEST(GuestResults, JsonNamesTheVmLockAndEveryVcpu)
{
	auto json = guestResultsJson("vm0", lockResults(10, 20, 30));
	EXPECT_NE(json.find("\"vm\":\"vm0\""), std::string::npos) << json;
	EXPECT_NE(json.find("\"lock\":\"ticket\""), std::string::npos);
	EXPECT_NE(json.find("\"vcpu\":1"), std::string::npos);
	EXPECT_NE(json.find("\"checks_ok\":true"), std::string::npos);
}

TEST(GuestResults, EveryLockKindHasAName)
{
	for (uint32_t lock = SPINDLE_LOCK_NONE; lock <= SPINDLE_LOCK_KIND_MAX; ++lock)
		EXPECT_STRNE(lockKindName(lock), "unknown") << lock;
	EXPECT_STREQ(lockKindName(SPINDLE_LOCK_PVHALT), "pvhalt");
	EXPECT_STREQ(lockKindName(SPINDLE_LOCK_KIND_MAX + 1), "unknown");
}

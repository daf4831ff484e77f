// The WAIT and KICK records: what the decoder accepts, caps and refuses. The guest is hostile,
// so every refusal here is a record the host must never act on.

#include <gtest/gtest.h>

#include "devices/pv_record.h"
#include "pv_mailbox.h"

using namespace spindle;
using test::mailboxWith;
using test::withHeader;

namespace {

constexpr uint64_t kRam = 64ull << 20;
const PvLimits kLimits{ 4, kRam };
constexpr uint64_t kWord = 0x300000; // in the kernel's usable RAM, 4-byte aligned

spindle_pv_wait waitOn(uint64_t gpa, uint32_t expected, uint64_t timeoutNs)
{
	auto record = withHeader<spindle_pv_wait>(SPINDLE_PV_WAIT);
	record.word_gpa = gpa;
	record.expected = expected;
	record.timeout_ns = timeoutNs;
	return record;
}

spindle_pv_kick kickOf(uint32_t vcpu)
{
	auto record = withHeader<spindle_pv_kick>(SPINDLE_PV_KICK);
	record.vcpu = vcpu;
	return record;
}

template<typename T>
Result<PvRecord> decode(const T &record, const PvLimits &limits = kLimits)
{
	return decodePvRecord(mailboxWith(record), sizeof(record), limits);
}

} // namespace

TEST(PvWaitRecord, DecodesAGoodRecord)
{
	auto decoded = decode(waitOn(kWord, 7, 250'000));

	ASSERT_TRUE(decoded) << decoded.error().message();
	const auto &wait = std::get<PvWait>(*decoded);
	EXPECT_EQ(wait.wordGpa, kWord);
	EXPECT_EQ(wait.expected, 7u);
	EXPECT_EQ(wait.timeoutNs, 250'000u);
}

TEST(PvWaitRecord, WithoutAConditionNeedsNoAddress)
{
	auto decoded = decode(waitOn(0, 0, 1000), PvLimits{ 1, 0 });

	ASSERT_TRUE(decoded);
	EXPECT_EQ(std::get<PvWait>(*decoded).wordGpa, 0u);
}

TEST(PvWaitRecord, ZeroAndOverlongTimeoutsBecomeTheHostCap)
{
	auto zero = decode(waitOn(kWord, 0, 0));
	auto huge = decode(waitOn(kWord, 0, UINT64_MAX));

	ASSERT_TRUE(zero);
	ASSERT_TRUE(huge);
	EXPECT_EQ(std::get<PvWait>(*zero).timeoutNs, SPINDLE_PV_WAIT_MAX_NS);
	EXPECT_EQ(std::get<PvWait>(*huge).timeoutNs, SPINDLE_PV_WAIT_MAX_NS);
}

TEST(PvWaitRecord, RefusesMisalignedOutOfRamAndHoleAddresses)
{
	for (uint64_t bad : { kWord + 2, kRam, kRam - 2, UINT64_MAX - 3, uint64_t{ SPINDLE_MMIO_HOLE_GPA },
			      uint64_t{ SPINDLE_PV_MMIO_GPA }, uint64_t{ SPINDLE_KERNEL_MIN_GPA } - 4,
			      uint64_t{ SPINDLE_MMIO_HOLE_GPA } - 2 }) {
		auto decoded = decode(waitOn(bad, 0, 1000));
		EXPECT_FALSE(decoded) << "accepted word address " << bad;
	}
	// The last u32 of RAM, and the ones just outside the hole, are fine.
	EXPECT_TRUE(decode(waitOn(kRam - 4, 0, 1000)));
	EXPECT_TRUE(decode(waitOn(SPINDLE_MMIO_HOLE_GPA - 4, 0, 1000)));
	EXPECT_TRUE(decode(waitOn(SPINDLE_KERNEL_MIN_GPA, 0, 1000)));
}

TEST(PvWaitRecord, RefusesAnAddressWhenTheRamSizeIsUnknown)
{
	auto decoded = decodePvRecord(mailboxWith(waitOn(kWord, 0, 1000)), sizeof(spindle_pv_wait), 4u);

	ASSERT_FALSE(decoded);
	EXPECT_NE(decoded.error().message().find("guest RAM size"), std::string::npos);
}

TEST(PvWaitRecord, RefusesNonZeroReservedAndWrongLengths)
{
	auto reserved = waitOn(kWord, 0, 1000);
	reserved.reserved = 1;
	auto shortRecord = waitOn(kWord, 0, 1000);
	shortRecord.header.length = sizeof(spindle_pv_wait) - 8;

	EXPECT_FALSE(decode(reserved));
	EXPECT_FALSE(decodePvRecord(mailboxWith(shortRecord), sizeof(spindle_pv_wait) - 8, kLimits));
	// The header says 32 bytes, the doorbell said 24.
	EXPECT_FALSE(decodePvRecord(mailboxWith(waitOn(kWord, 0, 1000)), sizeof(spindle_pv_wait) - 8, kLimits));
}

TEST(PvKickRecord, DecodesAGoodRecord)
{
	auto decoded = decode(kickOf(3));

	ASSERT_TRUE(decoded);
	EXPECT_EQ(std::get<PvKick>(*decoded).vcpu, 3u);
}

TEST(PvKickRecord, RefusesAVcpuOutOfRange)
{
	EXPECT_FALSE(decode(kickOf(4)));
	EXPECT_FALSE(decode(kickOf(SPINDLE_VCPU_NONE)));
}

TEST(PvKickRecord, RefusesNonZeroReservedAndWrongLengths)
{
	auto reserved = kickOf(1);
	reserved.reserved = 0x80000000u;
	struct LongKick {
		spindle_pv_header header;
		uint32_t vcpu;
		uint32_t reserved;
		uint64_t extra;
	} longKick = withHeader<LongKick>(SPINDLE_PV_KICK);

	EXPECT_FALSE(decode(reserved));
	EXPECT_FALSE(decode(longKick));
}

TEST(PvWaitRecord, CheckWaitWordGpaSaysWhy)
{
	EXPECT_EQ(checkWaitWordGpa(kWord, kRam), "");
	EXPECT_NE(checkWaitWordGpa(0, kRam).find("is 0"), std::string::npos);
	EXPECT_NE(checkWaitWordGpa(kWord + 1, kRam).find("aligned"), std::string::npos);
	EXPECT_NE(checkWaitWordGpa(kRam, kRam).find("outside"), std::string::npos);
	EXPECT_NE(checkWaitWordGpa(SPINDLE_SERIAL_MMIO_GPA, kRam).find("MMIO hole"), std::string::npos);
}

TEST(PvResultVmRecord, AcceptsThePvHaltLockKind)
{
	auto vm = withHeader<spindle_pv_result_vm>(SPINDLE_PV_RESULT_VM);
	vm.mode = SPINDLE_MODE_LOCK;
	vm.lock = SPINDLE_LOCK_PVHALT;
	vm.duration_ns = 1;
	auto beyond = vm;
	beyond.lock = SPINDLE_LOCK_KIND_MAX + 1;

	EXPECT_TRUE(decode(vm));
	EXPECT_FALSE(decode(beyond));
}

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/pv_device.h"
#include "devices/serial.h"
#include "pv_mailbox.h"

using namespace spindle;

namespace {

class RecordingDevice : public BusDevice
{
public:
	std::string_view name() const override { return "recorder"; }
	void read(const AccessInfo &access, std::span<uint8_t> data) override
	{
		lastVcpu = access.vcpu;
		lastOffset = access.offset;
		std::memset(data.data(), 0x5a, data.size());
	}
	void write(const AccessInfo &access, std::span<const uint8_t> data) override
	{
		lastVcpu = access.vcpu;
		lastOffset = access.offset;
		written.assign(data.begin(), data.end());
	}
	unsigned lastVcpu = 99;
	uint64_t lastOffset = 99;
	std::vector<uint8_t> written;
};

} // namespace

TEST(Bus, RejectsZeroLengthOverlapAndWrapAround)
{
	Bus bus("test");
	auto device = std::make_shared<RecordingDevice>();
	ASSERT_TRUE(bus.insert(device, 0x100, 0x10));
	EXPECT_FALSE(bus.insert(device, 0x200, 0));
	EXPECT_FALSE(bus.insert(device, 0x10f, 1));  // last byte of the first range
	EXPECT_FALSE(bus.insert(device, 0xf0, 0x11)); // runs into the first range
	EXPECT_FALSE(bus.insert(device, UINT64_MAX, 2));
	EXPECT_TRUE(bus.insert(device, 0x110, 0x10)); // adjacent is fine
	EXPECT_TRUE(bus.insert(device, UINT64_MAX, 1)); // the very last address
}

TEST(Bus, DispatchesWithOffsetAndAccessingVcpu)
{
	Bus bus("test");
	auto device = std::make_shared<RecordingDevice>();
	ASSERT_TRUE(bus.insert(device, 0x3f8, 8));
	const uint8_t byte = 'x';

	EXPECT_TRUE(bus.write(3, 0x3fd, {&byte, 1}));

	EXPECT_EQ(device->lastVcpu, 3u);
	EXPECT_EQ(device->lastOffset, 5u);
	EXPECT_EQ(device->written, std::vector<uint8_t>{'x'});
}

TEST(Bus, UnclaimedAndStraddlingAccessesAreNobodys)
{
	Bus bus("test");
	auto device = std::make_shared<RecordingDevice>();
	ASSERT_TRUE(bus.insert(device, 0x100, 4));
	uint8_t data[4] = {};

	EXPECT_FALSE(bus.read(0, 0x104, {data, 1}));
	EXPECT_FALSE(bus.read(0, 0x103, {data, 2}));
	EXPECT_FALSE(bus.read(0, 0xff, {data, 1}));
	EXPECT_TRUE(bus.read(0, 0x100, {data, 4}));
}

// A 16-bit IN from the 16550 fills one byte; the other must read as 0 (BusDevice::read), not as
// whatever the exit's data area held before (found by fuzz-bus-dispatch).
TEST(Bus, BytesADeviceLeavesUnwrittenReadAsZero)
{
	Bus bus("pio");
	ASSERT_TRUE(bus.insert(std::make_shared<Serial>([](std::string_view) {}), 0x3f8, Serial::kPortCount));
	uint8_t data[2] = { 0xaa, 0xaa };

	ASSERT_TRUE(bus.read(0, 0x3f8 + 5, data)); // line status register

	EXPECT_EQ(data[0] & 0x60, 0x60);
	EXPECT_EQ(data[1], 0);
}

TEST(Serial, EmitsWholeLinesAndDropsCarriageReturns)
{
	std::vector<std::string> lines;
	Serial serial([&](std::string_view line) { lines.emplace_back(line); });
	for (char c : std::string("hi\r\nthere")) {
		const uint8_t byte = static_cast<uint8_t>(c);
		serial.write({0, 0}, {&byte, 1});
	}
	ASSERT_EQ(lines, std::vector<std::string>{"hi"});

	serial.flush();

	EXPECT_EQ(lines, (std::vector<std::string>{"hi", "there"}));
}

TEST(Serial, BoundsALineThatNeverEnds)
{
	std::vector<std::string> lines;
	Serial serial([&](std::string_view line) { lines.emplace_back(line); });
	const uint8_t byte = 'a';
	for (size_t i = 0; i < Serial::kMaxLine + 10; ++i)
		serial.write({0, 0}, {&byte, 1});

	ASSERT_EQ(lines.size(), 1u);
	EXPECT_EQ(lines[0].size(), Serial::kMaxLine);
}

TEST(Serial, LineStatusAlwaysReportsTransmitterEmpty)
{
	Serial serial([](std::string_view) {});
	uint8_t status = 0;

	serial.read({0, 5}, {&status, 1});

	EXPECT_EQ(status & 0x60, 0x60);
}

TEST(Serial, DivisorLatchWritesAreNotData)
{
	std::vector<std::string> lines;
	Serial serial([&](std::string_view line) { lines.emplace_back(line); });
	const uint8_t dlab = 0x80, divisor = 1, newline = '\n', clear = 0x03;
	serial.write({0, 3}, {&dlab, 1});
	serial.write({0, 0}, {&divisor, 1});
	serial.write({0, 3}, {&clear, 1});

	serial.write({0, 0}, {&newline, 1});

	EXPECT_EQ(lines, std::vector<std::string>{""});
}

// ---- PV records -------------------------------------------------------------------------

using test::mailboxWith;
using test::withHeader;

TEST(PvRecord, DecodesAnExitRecord)
{
	auto record = withHeader<spindle_pv_exit>(SPINDLE_PV_EXIT);
	record.code = 42;

	auto decoded = decodePvRecord(mailboxWith(record), sizeof(record), 4);

	ASSERT_TRUE(decoded);
	ASSERT_TRUE(std::holds_alternative<PvExit>(*decoded));
	EXPECT_EQ(std::get<PvExit>(*decoded).code, 42);
}

TEST(PvRecord, DecodesAHaltRecordAndRefusesOneWithAPayload)
{
	struct HaltRecord {
		spindle_pv_header header;
	} halt = withHeader<HaltRecord>(SPINDLE_PV_HALT);
	struct LongHalt {
		spindle_pv_header header;
		uint64_t extra;
	} longHalt = withHeader<LongHalt>(SPINDLE_PV_HALT);

	auto decoded = decodePvRecord(mailboxWith(halt), sizeof(halt), 1);
	auto refused = decodePvRecord(mailboxWith(longHalt), sizeof(longHalt), 1);

	ASSERT_TRUE(decoded);
	EXPECT_TRUE(std::holds_alternative<PvHalt>(*decoded));
	EXPECT_FALSE(refused);
}

TEST(PvRecord, RejectsBadMagicWrongLengthsAndUnknownType)
{
	auto record = withHeader<spindle_pv_exit>(SPINDLE_PV_EXIT);
	auto badMagic = record;
	badMagic.header.magic = 0;
	auto badType = record;
	badType.header.type = 99;
	auto shortLength = record;
	shortLength.header.length = 8;

	EXPECT_FALSE(decodePvRecord(mailboxWith(badMagic), sizeof(record), 4));
	EXPECT_FALSE(decodePvRecord(mailboxWith(badType), sizeof(record), 4));
	EXPECT_FALSE(decodePvRecord(mailboxWith(shortLength), 8, 4));
	EXPECT_FALSE(decodePvRecord(mailboxWith(record), sizeof(record) + 4, 4)); // OUT differs from header
	EXPECT_FALSE(decodePvRecord(mailboxWith(record), 4, 4));                  // shorter than a header
	EXPECT_FALSE(decodePvRecord(mailboxWith(record), SPINDLE_MAILBOX_SIZE + 1, 4));
}

TEST(PvRecord, RejectsExitCodesOutsideAByte)
{
	auto record = withHeader<spindle_pv_exit>(SPINDLE_PV_EXIT);
	record.code = 256;
	EXPECT_FALSE(decodePvRecord(mailboxWith(record), sizeof(record), 1));
	record.code = -1;
	EXPECT_FALSE(decodePvRecord(mailboxWith(record), sizeof(record), 1));
}

TEST(PvRecord, RejectsLongSpinNamingAVcpuThatDoesNotExist)
{
	auto record = withHeader<spindle_pv_long_spin>(SPINDLE_PV_LONG_SPIN);
	record.waits_on = 4;

	EXPECT_FALSE(decodePvRecord(mailboxWith(record), sizeof(record), 4));

	record.waits_on = SPINDLE_VCPU_NONE;
	EXPECT_TRUE(decodePvRecord(mailboxWith(record), sizeof(record), 4));
}

TEST(PvRecord, RejectsErrorTextWithoutTerminator)
{
	auto record = withHeader<spindle_pv_error>(SPINDLE_PV_ERROR);
	std::memset(record.text, 'x', sizeof(record.text));

	EXPECT_FALSE(decodePvRecord(mailboxWith(record), sizeof(record), 1));
}

TEST(PvRecord, ReplacesControlCharactersInErrorText)
{
	auto record = withHeader<spindle_pv_error>(SPINDLE_PV_ERROR);
	std::strcpy(record.text, "bad\x1b[2Jinput");

	auto decoded = decodePvRecord(mailboxWith(record), sizeof(record), 1);

	ASSERT_TRUE(decoded);
	EXPECT_EQ(std::get<PvGuestError>(*decoded).text, "bad?[2Jinput");
}

TEST(PvRecord, RejectsResultsWithUnknownModeLockOrZeroDuration)
{
	auto vm = withHeader<spindle_pv_result_vm>(SPINDLE_PV_RESULT_VM);
	vm.mode = SPINDLE_MODE_LOCK;
	vm.lock = SPINDLE_LOCK_TICKET;
	vm.duration_ns = 1000;
	ASSERT_TRUE(decodePvRecord(mailboxWith(vm), sizeof(vm), 1));

	auto badMode = vm;
	badMode.mode = 9;
	auto badLock = vm;
	badLock.lock = 77;
	auto zero = vm;
	zero.duration_ns = 0;
	EXPECT_FALSE(decodePvRecord(mailboxWith(badMode), sizeof(vm), 1));
	EXPECT_FALSE(decodePvRecord(mailboxWith(badLock), sizeof(vm), 1));
	EXPECT_FALSE(decodePvRecord(mailboxWith(zero), sizeof(vm), 1));
}

namespace {

struct SinkRecorder : PvRecordSink {
	void onPvRecord(unsigned vcpu, const PvRecord &record) override { records.emplace_back(vcpu, record); }
	void onMalformedPvRecord(unsigned, const Error &reason) override { errors.push_back(reason.message()); }
	std::vector<std::pair<unsigned, PvRecord>> records;
	std::vector<std::string> errors;
};

} // namespace

TEST(PvDevice, ReadsTheMailboxOfTheAccessingVcpu)
{
	std::vector<uint8_t> ram(1 << 20, 0);
	SinkRecorder sink;
	PvDevice device(ram, 4, sink);
	auto record = withHeader<spindle_pv_exit>(SPINDLE_PV_EXIT);
	record.code = 9;
	std::memcpy(ram.data() + SPINDLE_MAILBOX_GPA + 2 * SPINDLE_MAILBOX_SIZE, &record, sizeof(record));
	const uint32_t length = sizeof(record);

	device.write({2, 0}, {reinterpret_cast<const uint8_t *>(&length), 4});

	ASSERT_EQ(sink.records.size(), 1u);
	EXPECT_EQ(sink.records[0].first, 2u);
	EXPECT_EQ(std::get<PvExit>(sink.records[0].second).code, 9);
}

TEST(PvDevice, CountsAndDropsMalformedSubmissions)
{
	std::vector<uint8_t> ram(1 << 20, 0);
	SinkRecorder sink;
	PvDevice device(ram, 4, sink);
	const uint32_t length = 16;
	const uint8_t narrow = 16;

	device.write({0, 0}, {reinterpret_cast<const uint8_t *>(&length), 4}); // empty mailbox
	device.write({0, 0}, {&narrow, 1});                                     // 8-bit OUT
	device.write({7, 0}, {reinterpret_cast<const uint8_t *>(&length), 4}); // vCPU beyond count

	EXPECT_TRUE(sink.records.empty());
	EXPECT_EQ(device.malformedCount(), 3u);
	EXPECT_EQ(sink.errors.size(), 3u);
}

TEST(PvDevice, RefusesAMailboxOutsideGuestRam)
{
	std::vector<uint8_t> ram(SPINDLE_MAILBOX_GPA + 100, 0); // too small for any mailbox
	SinkRecorder sink;
	PvDevice device(ram, 1, sink);
	const uint32_t length = 8;

	device.write({0, 0}, {reinterpret_cast<const uint8_t *>(&length), 4});

	EXPECT_EQ(device.malformedCount(), 1u);
}

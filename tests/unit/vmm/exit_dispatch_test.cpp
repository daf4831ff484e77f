#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "vmm/runtime/exit_dispatch.h"

using namespace spindle;

namespace {

class Latch : public BusDevice
{
public:
	std::string_view name() const override { return "latch"; }
	void read(const AccessInfo &, std::span<uint8_t> data) override { std::memset(data.data(), 0x42, data.size()); }
	void write(const AccessInfo &access, std::span<const uint8_t> data) override
	{
		for (uint8_t b : data)
			bytes.push_back(b);
		vcpu = access.vcpu;
	}
	std::vector<uint8_t> bytes;
	unsigned vcpu = 99;
};

// A kvm_run with room behind it for port I/O data, as the real mapping has.
struct RunPage {
	alignas(kvm_run) uint8_t storage[8192] = {};
	kvm_run &run() { return *reinterpret_cast<kvm_run *>(storage); }
};

struct Fixture {
	Bus pio{"pio"};
	Bus mmio{"mmio"};
	std::shared_ptr<Latch> latch = std::make_shared<Latch>();
	ExitCounters counters;
	std::vector<std::string> unclaimed;
	RunPage page;

	Fixture()
	{
		EXPECT_TRUE(pio.insert(latch, 0x80, 4));
		EXPECT_TRUE(mmio.insert(latch, 0xd0000000, 0x1000));
	}
	ExitContext context(unsigned vcpu = 1)
	{
		return {pio, mmio, vcpu, sizeof(page.storage), counters,
			[this](const std::string &what) { unclaimed.push_back(what); }};
	}
	void portIo(uint8_t direction, uint16_t port, uint8_t size, uint32_t count, std::vector<uint8_t> data)
	{
		kvm_run &run = page.run();
		run.exit_reason = KVM_EXIT_IO;
		run.io.direction = direction;
		run.io.port = port;
		run.io.size = size;
		run.io.count = count;
		run.io.data_offset = 4096;
		if (!data.empty()) // memcpy from an empty vector's null data() is undefined, even for 0 bytes
			std::memcpy(page.storage + 4096, data.data(), data.size());
	}
};

} // namespace

TEST(ExitDispatch, PortWriteReachesTheDeviceWithTheVcpuIndex)
{
	Fixture f;
	f.portIo(KVM_EXIT_IO_OUT, 0x80, 1, 1, {'z'});

	auto result = dispatchExit(f.page.run(), f.context(3));

	EXPECT_EQ(result.outcome, ExitOutcome::Continue);
	EXPECT_EQ(f.latch->bytes, std::vector<uint8_t>{'z'});
	EXPECT_EQ(f.latch->vcpu, 3u);
	EXPECT_EQ(f.counters.get(ExitKind::Io), 1u);
}

TEST(ExitDispatch, StringPortWriteDeliversEveryItem)
{
	Fixture f;
	f.portIo(KVM_EXIT_IO_OUT, 0x80, 1, 3, {'a', 'b', 'c'});

	dispatchExit(f.page.run(), f.context());

	EXPECT_EQ(f.latch->bytes, (std::vector<uint8_t>{'a', 'b', 'c'}));
}

TEST(ExitDispatch, UnclaimedPortReadFloatsHighAndIsReported)
{
	Fixture f;
	f.portIo(KVM_EXIT_IO_IN, 0x60, 2, 1, {0, 0});

	auto result = dispatchExit(f.page.run(), f.context());

	EXPECT_EQ(result.outcome, ExitOutcome::Continue);
	EXPECT_EQ(f.page.storage[4096], 0xff);
	EXPECT_EQ(f.page.storage[4097], 0xff);
	ASSERT_EQ(f.unclaimed.size(), 1u);
	EXPECT_EQ(f.counters.get(ExitKind::Unclaimed), 1u);
}

TEST(ExitDispatch, PortIoWithDataOutsideTheRunPageIsFatal)
{
	Fixture f;
	f.portIo(KVM_EXIT_IO_OUT, 0x80, 4, 1, {});
	f.page.run().io.data_offset = 8190;

	EXPECT_EQ(dispatchExit(f.page.run(), f.context()).outcome, ExitOutcome::Fatal);
}

// The data offset is bounded by the mapping only, so a bad one can put the data over the kvm_run
// header; an unclaimed IN then writes 0xff over io.size and io.count, and the loop must still use
// the values it checked: 16 bytes, not 16 items of 255 bytes (found by fuzz-bus-dispatch as a
// heap-buffer-overflow past a small mapping).
TEST(ExitDispatch, PortReadOverTheHeaderKeepsTheCheckedSizeAndCount)
{
	Fixture f;
	f.portIo(KVM_EXIT_IO_IN, 0x60, 1, 16, {});
	kvm_run &run = f.page.run();
	const size_t start = offsetof(kvm_run, io);
	run.io.data_offset = start;

	EXPECT_EQ(dispatchExit(run, f.context()).outcome, ExitOutcome::Continue);
	EXPECT_EQ(f.counters.get(ExitKind::Unclaimed), 16u);
	EXPECT_TRUE(std::all_of(f.page.storage + start, f.page.storage + start + 16, [](uint8_t b) { return b == 0xff; }));
	EXPECT_TRUE(std::all_of(f.page.storage + start + 16, std::end(f.page.storage), [](uint8_t b) { return b == 0; }));
}

TEST(ExitDispatch, MmioReadIsServedByTheDevice)
{
	Fixture f;
	kvm_run &run = f.page.run();
	run.exit_reason = KVM_EXIT_MMIO;
	run.mmio.phys_addr = 0xd0000010;
	run.mmio.len = 4;
	run.mmio.is_write = 0;

	dispatchExit(run, f.context());

	EXPECT_EQ(run.mmio.data[0], 0x42);
	EXPECT_EQ(run.mmio.data[3], 0x42);
	EXPECT_EQ(f.counters.get(ExitKind::Mmio), 1u);
}

TEST(ExitDispatch, MmioWithImpossibleLengthIsFatal)
{
	Fixture f;
	kvm_run &run = f.page.run();
	run.exit_reason = KVM_EXIT_MMIO;
	run.mmio.len = 9;
	EXPECT_EQ(dispatchExit(run, f.context()).outcome, ExitOutcome::Fatal);
}

TEST(ExitDispatch, HaltEndsTheVcpu)
{
	Fixture f;
	f.page.run().exit_reason = KVM_EXIT_HLT;
	EXPECT_EQ(dispatchExit(f.page.run(), f.context()).outcome, ExitOutcome::Halted);
	EXPECT_EQ(f.counters.get(ExitKind::Hlt), 1u);
}

TEST(ExitDispatch, ShutdownIsReportedAsATripleFault)
{
	Fixture f;
	f.page.run().exit_reason = KVM_EXIT_SHUTDOWN;

	auto result = dispatchExit(f.page.run(), f.context());

	EXPECT_EQ(result.outcome, ExitOutcome::Fatal);
	EXPECT_NE(result.reason.find("triple fault"), std::string::npos);
}

TEST(ExitDispatch, FailedEntryAndInternalErrorAreFatalWithTheirReason)
{
	Fixture f;
	kvm_run &run = f.page.run();
	run.exit_reason = KVM_EXIT_FAIL_ENTRY;
	run.fail_entry.hardware_entry_failure_reason = 0x21;
	auto entry = dispatchExit(run, f.context());
	run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	auto internal = dispatchExit(run, f.context());

	EXPECT_EQ(entry.outcome, ExitOutcome::Fatal);
	EXPECT_NE(entry.reason.find("0x21"), std::string::npos);
	EXPECT_EQ(internal.outcome, ExitOutcome::Fatal);
	EXPECT_NE(internal.reason.find("suberror 1"), std::string::npos);
}

TEST(ExitDispatch, ShutdownAndFailedEmulationAreBothReportedAsACrashedGuest)
{
	Fixture f;
	kvm_run &run = f.page.run();
	run.exit_reason = KVM_EXIT_SHUTDOWN;
	auto shutdown = dispatchExit(run, f.context());
	run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	auto emulation = dispatchExit(run, f.context());

	EXPECT_EQ(shutdown.reason.rfind("guest crashed: ", 0), 0u) << shutdown.reason;
	EXPECT_EQ(emulation.reason.rfind("guest crashed: ", 0), 0u) << emulation.reason;
	EXPECT_NE(emulation.reason.find("emulation failure"), std::string::npos) << emulation.reason;
}

TEST(ExitDispatch, InterruptExitContinues)
{
	Fixture f;
	f.page.run().exit_reason = KVM_EXIT_INTR;
	EXPECT_EQ(dispatchExit(f.page.run(), f.context()).outcome, ExitOutcome::Continue);
	EXPECT_EQ(f.counters.get(ExitKind::Interrupted), 1u);
}

TEST(ExitDispatch, UnknownExitIsFatal)
{
	Fixture f;
	f.page.run().exit_reason = 1234;
	EXPECT_EQ(dispatchExit(f.page.run(), f.context()).outcome, ExitOutcome::Fatal);
}

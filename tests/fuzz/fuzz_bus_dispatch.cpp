// Fuzzes the buses (devices/bus.h) and exit dispatch (vmm/runtime/exit_dispatch.h) with random
// device placements and random exits in a hand-filled kvm_run, as a hostile guest (port I/O, MMIO)
// or a confused kernel (any exit reason, any size, count and data offset) could produce them.
//
// The port bus holds the machine's real devices where the machine puts them (the 16550 at 0x3f8,
// the PV device at 0x510 over a small guest RAM); then recording devices are placed at random on
// both buses, and exits follow.
// Contract:
//   Bus::insert accepts exactly the non-empty ranges that neither wrap past 2^64 nor overlap a
//     range already on that bus;
//   an access is claimed exactly when one range holds all of it; its device sees the offset into
//     its range, the accessing vCPU, and never a byte outside its range; bytes of a read that the
//     device leaves unwritten read as 0 (BusDevice::read); an unclaimed read reads all ones and is
//     counted and reported once per item;
//   dispatchExit continues after well-formed port I/O (size 1, 2 or 4; data inside the kvm_run
//     mapping) and MMIO (length 1..8), halts on HLT, continues on INTR, and is fatal with a reason
//     for everything else, counting each exit under exactly its kind; it never touches a byte
//     outside the kvm_run mapping (ASan: the mapping is a heap block of exactly that size);
//   the serial device emits lines without '\n' of at most Serial::kMaxLine bytes; the PV device
//     answers every write to its ports with exactly one record or one rejection, every record it
//     passes on obeys the documented limits, and a read of it returns the interface version.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/pv_device.h"
#include "devices/serial.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/pv_contract.h"
#include "vmm/runtime/exit_dispatch.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

// A device that checks every access it sees against the range it was given.
class Recorder final : public BusDevice
{
public:
	Recorder(uint64_t base, uint64_t length) : base_(base), length_(length) {}

	std::string_view name() const override { return "recorder"; }
	void read(const AccessInfo &access, std::span<uint8_t> data) override
	{
		check(access, data.size());
		for (size_t i = 0; i < data.size(); ++i)
			data[i] = pattern(access.offset + i);
	}
	void write(const AccessInfo &access, std::span<const uint8_t> data) override
	{
		check(access, data.size());
		written.assign(data.begin(), data.end());
	}

	static uint8_t pattern(uint64_t offset) { return static_cast<uint8_t>(0x5a ^ offset); }

	uint64_t lastAddress = 0;
	unsigned lastVcpu = 0;
	unsigned accesses = 0;
	std::vector<uint8_t> written;

private:
	void check(const AccessInfo &access, size_t size)
	{
		// 1..8, not only 1, 2, 4 or 8 as BusDevice::read says: MMIO passes any length up to 8
		// (KVM splits a page-crossing access into fragments of other lengths).
		FUZZ_REQUIRE(size >= 1 && size <= 8);
		FUZZ_REQUIRE(access.offset < length_ && size <= length_ - access.offset);
		lastAddress = base_ + access.offset;
		lastVcpu = access.vcpu;
		++accesses;
	}

	uint64_t base_;
	uint64_t length_;
};

class RecordSink final : public PvRecordSink
{
public:
	explicit RecordSink(unsigned vcpuCount) : vcpuCount_(vcpuCount) {}

	void onPvRecord(unsigned vcpu, const PvRecord &record) override
	{
		FUZZ_REQUIRE(vcpu < vcpuCount_);
		requireRecordLimits(record, vcpuCount_);
		++answers;
	}
	void onMalformedPvRecord(unsigned, const Error &reason) override
	{
		requireInputError(reason);
		++answers;
	}

	unsigned answers = 0;

private:
	unsigned vcpuCount_;
};

struct Placed {
	const Bus *bus;
	uint64_t base;
	uint64_t length;
	std::shared_ptr<Recorder> recorder; // null for the machine's own devices
};

class World
{
public:
	explicit World(FuzzedDataProvider &in)
		: vcpuCount_(in.ConsumeIntegralInRange<unsigned>(1, 8)),
		  // Sometimes too small for the last mailboxes, so the PV device's bounds check matters.
		  ram_(in.ConsumeIntegralInRange<size_t>(SPINDLE_MAILBOX_GPA, SPINDLE_MAILBOX_GPA + 8 * SPINDLE_MAILBOX_SIZE)),
		  sink_(vcpuCount_), pv_(std::make_shared<PvDevice>(ram_, vcpuCount_, sink_)),
		  serial_(std::make_shared<Serial>([](std::string_view line) {
			  FUZZ_REQUIRE(line.size() <= Serial::kMaxLine);
			  FUZZ_REQUIRE(line.find('\n') == std::string_view::npos);
		  }))
	{
		place(pio_, serial_, SPINDLE_SERIAL_PORT, Serial::kPortCount, nullptr);
		place(pio_, pv_, SPINDLE_PV_PORT, SPINDLE_PV_PORT_COUNT, nullptr);
	}

	void insertRandom(FuzzedDataProvider &in)
	{
		Bus &bus = in.ConsumeBool() ? pio_ : mmio_;
		// Mostly small ranges near small addresses, so that accesses find them.
		const uint64_t base = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 0x1000)
						       : in.ConsumeIntegral<uint64_t>();
		const uint64_t length = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 16)
							 : in.ConsumeIntegral<uint64_t>();
		auto recorder = std::make_shared<Recorder>(base, length);
		place(bus, recorder, base, length, recorder);
	}

	void pokeMailbox(FuzzedDataProvider &in)
	{
		const unsigned vcpu = in.ConsumeIntegralInRange<unsigned>(0, vcpuCount_ - 1);
		const uint64_t at = SPINDLE_MAILBOX_GPA + uint64_t{ vcpu } * SPINDLE_MAILBOX_SIZE;
		if (at >= ram_.size())
			return;
		// A header most of the time, so the decoder's per-type checks run.
		spindle_pv_header header{ SPINDLE_PV_MAGIC, in.ConsumeIntegralInRange<uint16_t>(0, SPINDLE_PV_TYPE_MAX + 1),
					  in.ConsumeIntegral<uint16_t>() };
		std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, SPINDLE_MAILBOX_SIZE));
		if (in.ConsumeBool() && bytes.size() >= sizeof(header))
			std::memcpy(bytes.data(), &header, sizeof(header));
		std::copy_n(bytes.begin(), std::min<size_t>(bytes.size(), ram_.size() - at), ram_.begin() + static_cast<long>(at));
	}

	void exit(FuzzedDataProvider &in);

private:
	void place(Bus &bus, std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length,
		   std::shared_ptr<Recorder> recorder)
	{
		bool free = length > 0 && length - 1 <= UINT64_MAX - base;
		for (const Placed &p : placed_)
			free = free && (p.bus != &bus || base + (length - 1) < p.base || p.base + (p.length - 1) < base);
		const Status status = bus.insert(std::move(device), base, length);
		FUZZ_REQUIRE(status.ok() == free);
		if (status)
			placed_.push_back({ &bus, base, length, std::move(recorder) });
		else
			requireInputError(status.error());
	}

	// The range that holds all of [address, address + size) on a bus, if any.
	const Placed *ownerOf(const Bus &bus, uint64_t address, uint64_t size) const
	{
		for (const Placed &p : placed_)
			if (p.bus == &bus && address >= p.base && address - p.base < p.length && size <= p.length - (address - p.base))
				return &p;
		return nullptr;
	}

	unsigned vcpuCount_;
	std::vector<uint8_t> ram_;
	RecordSink sink_;
	std::shared_ptr<PvDevice> pv_;
	std::shared_ptr<Serial> serial_;
	Bus pio_{ "pio" };
	Bus mmio_{ "mmio" };
	std::vector<Placed> placed_;
	ExitCounters counters_;
};

void World::exit(FuzzedDataProvider &in)
{
	// The kvm_run mapping: at least the structure, with room for port I/O data behind it.
	const size_t runSize = in.ConsumeIntegralInRange<size_t>(sizeof(kvm_run), 3 * 4096);
	std::unique_ptr<uint8_t[]> mapping(new uint8_t[runSize]());
	kvm_run &run = *reinterpret_cast<kvm_run *>(mapping.get());
	static constexpr uint32_t kReasons[] = { KVM_EXIT_IO, KVM_EXIT_MMIO, KVM_EXIT_HLT, KVM_EXIT_INTR,
						 KVM_EXIT_SHUTDOWN, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTERNAL_ERROR };
	const uint32_t reason = in.ConsumeBool() ? in.PickValueInArray(kReasons) : in.ConsumeIntegral<uint32_t>();
	const unsigned vcpu = in.ConsumeIntegralInRange<unsigned>(0, vcpuCount_); // one past the end too

	// The exit as the kernel left it. Port I/O data is written first and the header last: a data
	// offset that makes the two overlap leaves the header's values in the overlap.
	const bool isIo = reason == KVM_EXIT_IO, isMmio = reason == KVM_EXIT_MMIO;
	uint8_t direction = 0, size = 0;
	uint16_t port = 0;
	uint32_t count = 0, mmioLen = 0;
	uint64_t address = 0, dataOffset = 0;
	bool write = false, wellFormed = false;
	if (isIo) {
		direction = in.ConsumeBool() ? KVM_EXIT_IO_OUT : (in.ConsumeBool() ? KVM_EXIT_IO_IN : in.ConsumeIntegral<uint8_t>());
		size = in.ConsumeBool() ? in.PickValueInArray({ 1, 2, 4 }) : in.ConsumeIntegral<uint8_t>();
		port = in.ConsumeBool() ? static_cast<uint16_t>(in.PickValueInArray({ SPINDLE_SERIAL_PORT, SPINDLE_PV_PORT }) +
							  in.ConsumeIntegralInRange(0u, 7u))
					: in.ConsumeIntegral<uint16_t>();
		count = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 8) : in.ConsumeIntegral<uint32_t>();
		dataOffset = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, runSize) : in.ConsumeIntegral<uint64_t>();
		const uint64_t bytes = uint64_t{ size } * count;
		wellFormed = (size == 1 || size == 2 || size == 4) && dataOffset <= runSize && bytes <= runSize - dataOffset;
		if (wellFormed) {
			const auto fill = in.ConsumeBytes<uint8_t>(bytes);
			std::copy(fill.begin(), fill.end(), mapping.get() + dataOffset);
		}
		run.io.direction = direction;
		run.io.size = size;
		run.io.port = port;
		run.io.count = count;
		run.io.data_offset = dataOffset;
		address = port;
		write = direction == KVM_EXIT_IO_OUT;
	} else if (isMmio) {
		address = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 0x1010) : in.ConsumeIntegral<uint64_t>();
		mmioLen = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 9) : in.ConsumeIntegral<uint32_t>();
		write = in.ConsumeBool();
		run.mmio.phys_addr = address;
		run.mmio.len = mmioLen;
		run.mmio.is_write = write;
		const auto fill = in.ConsumeBytes<uint8_t>(sizeof(run.mmio.data));
		std::copy(fill.begin(), fill.end(), run.mmio.data);
		wellFormed = mmioLen >= 1 && mmioLen <= sizeof(run.mmio.data);
		size = static_cast<uint8_t>(mmioLen);
		count = 1;
	}
	run.exit_reason = reason;
	uint8_t *const items = !wellFormed ? nullptr : isIo ? mapping.get() + dataOffset : run.mmio.data;
	const std::vector<uint8_t> before = wellFormed ? std::vector<uint8_t>(items, items + uint64_t{ size } * count)
						       : std::vector<uint8_t>();

	// What dispatch must do, known before it runs.
	ExitKind kind = ExitKind::Other;
	ExitOutcome expected = ExitOutcome::Fatal;
	const Bus &bus = isIo ? pio_ : mmio_;
	const Placed *owner = (isIo || isMmio) && wellFormed ? ownerOf(bus, address, size) : nullptr;
	unsigned unclaimed = 0, pvWrites = 0;
	if (isIo || isMmio) {
		kind = isIo ? ExitKind::Io : ExitKind::Mmio;
		if (wellFormed) {
			expected = ExitOutcome::Continue;
			unclaimed = owner ? 0 : count;
			pvWrites = owner && isIo && owner->base == SPINDLE_PV_PORT && write ? count : 0;
		}
	} else if (reason == KVM_EXIT_HLT) {
		kind = ExitKind::Hlt;
		expected = ExitOutcome::Halted;
	} else if (reason == KVM_EXIT_INTR) {
		kind = ExitKind::Interrupted;
		expected = ExitOutcome::Continue;
	} else if (reason == KVM_EXIT_SHUTDOWN) {
		kind = ExitKind::Shutdown;
	} else if (reason == KVM_EXIT_FAIL_ENTRY) {
		kind = ExitKind::FailEntry;
	} else if (reason == KVM_EXIT_INTERNAL_ERROR) {
		kind = ExitKind::InternalError;
	}

	std::vector<unsigned> accessesBefore;
	for (const Placed &p : placed_)
		accessesBefore.push_back(p.recorder ? p.recorder->accesses : 0);
	uint64_t countsBefore[static_cast<unsigned>(ExitKind::Count)];
	for (unsigned k = 0; k < static_cast<unsigned>(ExitKind::Count); ++k)
		countsBefore[k] = counters_.get(static_cast<ExitKind>(k));
	const unsigned answersBefore = sink_.answers;
	unsigned reported = 0;
	const ExitContext context{ pio_, mmio_, vcpu, runSize, counters_, [&](const std::string &what) {
					  FUZZ_REQUIRE(!what.empty());
					  ++reported;
				  } };

	const ExitResult result = dispatchExit(run, context);

	FUZZ_REQUIRE(result.outcome == expected);
	FUZZ_REQUIRE((result.outcome == ExitOutcome::Fatal) == !result.reason.empty());
	for (unsigned k = 0; k < static_cast<unsigned>(ExitKind::Count); ++k) {
		const auto which = static_cast<ExitKind>(k);
		const uint64_t delta = which == ExitKind::Unclaimed ? unclaimed : which == kind ? 1 : 0;
		FUZZ_REQUIRE(counters_.get(which) - countsBefore[k] == delta);
	}
	FUZZ_REQUIRE(reported == unclaimed);
	FUZZ_REQUIRE(sink_.answers - answersBefore == pvWrites);
	if (!wellFormed)
		return;

	// What the devices saw, and what a read returned.
	for (size_t i = 0; i < placed_.size(); ++i) {
		const Placed &p = placed_[i];
		if (!p.recorder)
			continue;
		const unsigned seen = p.recorder->accesses - accessesBefore[i];
		FUZZ_REQUIRE(seen == (&p == owner ? count : 0));
		if (seen == 0)
			continue;
		FUZZ_REQUIRE(p.recorder->lastAddress == address && p.recorder->lastVcpu == vcpu);
		if (write) // the last item, as it was before the dispatch
			FUZZ_REQUIRE(std::equal(p.recorder->written.begin(), p.recorder->written.end(),
						before.begin() + static_cast<long>(uint64_t{ count - 1 } * size)));
	}
	if (write)
		return;
	const uint32_t version = SPINDLE_CPUID_VERSION;
	for (uint64_t i = 0; i < uint64_t{ count } * size; ++i) {
		const uint64_t byte = i % size; // within its item
		if (!owner)
			FUZZ_REQUIRE(items[i] == 0xff);
		else if (owner->recorder)
			FUZZ_REQUIRE(items[i] == Recorder::pattern(address - owner->base + byte));
		else if (owner->base == SPINDLE_PV_PORT)
			FUZZ_REQUIRE(items[i] == (byte < sizeof(version) ? reinterpret_cast<const uint8_t *>(&version)[byte] : 0));
		else if (byte > 0) // the serial device fills one byte (its register); the rest read as 0
			FUZZ_REQUIRE(items[i] == 0);
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzedDataProvider in(data, size);
	World world(in);
	const unsigned inserts = in.ConsumeIntegralInRange(0, 6);
	for (unsigned i = 0; i < inserts; ++i)
		world.insertRandom(in);
	while (in.remaining_bytes() > 0) {
		if (in.ConsumeIntegralInRange(0, 3) == 0)
			world.pokeMailbox(in);
		else
			world.exit(in);
	}
	return 0;
}

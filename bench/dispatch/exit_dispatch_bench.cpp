// User-space cost of one port-I/O exit: dispatchExit() over a hand-filled kvm_run, through the
// bus, into a device. This is what Spindle adds on top of KVM's own exit path for each OUT.

#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>

#include "devices/serial.h"
#include "vmm/runtime/exit_dispatch.h"

using namespace spindle;

namespace {

class NullDevice : public BusDevice
{
public:
	std::string_view name() const override { return "null"; }
	void read(const AccessInfo &, std::span<uint8_t> data) override { std::memset(data.data(), 0, data.size()); }
	void write(const AccessInfo &, std::span<const uint8_t> data) override { benchmark::DoNotOptimize(data.data()); }
};

struct Page {
	alignas(kvm_run) uint8_t storage[8192] = {};
	kvm_run &run() { return *reinterpret_cast<kvm_run *>(storage); }
};

void fillOut(Page &page, uint16_t port)
{
	kvm_run &run = page.run();
	run.exit_reason = KVM_EXIT_IO;
	run.io.direction = KVM_EXIT_IO_OUT;
	run.io.size = 1;
	run.io.port = port;
	run.io.count = 1;
	run.io.data_offset = 4096;
	page.storage[4096] = 'x';
}

void runDispatch(benchmark::State &state, std::shared_ptr<BusDevice> device, unsigned devices)
{
	Bus pio("pio"), mmio("mmio");
	// Other devices on the bus make the lookup realistic (a map of ranges, not one entry).
	for (unsigned i = 0; i < devices; ++i)
		(void)pio.insert(std::make_shared<NullDevice>(), 0x1000 + i * 16, 8);
	(void)pio.insert(std::move(device), 0x3f8, 8);
	ExitCounters counters;
	ExitContext context{pio, mmio, 0, sizeof(Page::storage), counters, nullptr};
	Page page;
	fillOut(page, 0x3f8);
	for (auto _ : state) {
		auto result = dispatchExit(page.run(), context);
		benchmark::DoNotOptimize(result.outcome);
	}
	state.SetItemsProcessed(state.iterations());
}

void BM_DispatchPortOutToNullDevice(benchmark::State &state)
{
	runDispatch(state, std::make_shared<NullDevice>(), static_cast<unsigned>(state.range(0)));
}
BENCHMARK(BM_DispatchPortOutToNullDevice)->Arg(2)->Arg(32);

void BM_DispatchPortOutToSerial(benchmark::State &state)
{
	// A byte that is not a newline: buffered, so this measures dispatch, not terminal output.
	runDispatch(state, std::make_shared<Serial>([](std::string_view) {}), 2);
}
BENCHMARK(BM_DispatchPortOutToSerial);

} // namespace

BENCHMARK_MAIN();

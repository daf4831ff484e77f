#pragma once

// A 16550-compatible UART, transmit path only: what the guest writes to THR goes to a sink, one
// whole line at a time (so lines from different VMs and vCPUs never interleave mid-line). The
// line status register always reports an empty transmitter, so polling guests never wait.

#include <functional>
#include <mutex>
#include <string>

#include "devices/bus.h"

namespace spindle {

class Serial final : public BusDevice
{
public:
	using LineSink = std::function<void(std::string_view line)>;
	static constexpr uint64_t kPortCount = 8;
	// A guest that never sends a newline must not grow host memory without bound.
	static constexpr size_t kMaxLine = 4096;

	explicit Serial(LineSink sink) : sink_(std::move(sink)) {}
	~Serial() override { flush(); }

	std::string_view name() const override { return "serial"; }
	void read(const AccessInfo &access, std::span<uint8_t> data) override;
	void write(const AccessInfo &access, std::span<const uint8_t> data) override;

	// Emit a partial last line, if any (at VM exit).
	void flush();

private:
	LineSink sink_;
	std::mutex mutex_;
	std::string line_;
	uint8_t scratch_ = 0;   // SCR register: some probes write and read it back
	uint8_t lineControl_ = 0; // LCR: DLAB bit switches offsets 0/1 to the divisor latch
};

} // namespace spindle

#pragma once

// An address bus (port I/O or MMIO): devices claim non-overlapping ranges and see accesses as an
// offset into their range plus the index of the vCPU that made the access. Devices never issue
// ioctls and the run loop never knows a device by name: it only asks the bus.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "common/result.h"

namespace spindle {

struct AccessInfo {
	unsigned vcpu;   // index of the accessing vCPU within its VM
	uint64_t offset; // address minus the base of the device's range
};

class BusDevice
{
public:
	virtual ~BusDevice() = default;
	virtual std::string_view name() const = 0;
	// Fill data (1, 2, 4 or 8 bytes) for a guest read; unwritten bytes read as 0.
	virtual void read(const AccessInfo &access, std::span<uint8_t> data) = 0;
	virtual void write(const AccessInfo &access, std::span<const uint8_t> data) = 0;
};

class Bus
{
public:
	explicit Bus(std::string name) : name_(std::move(name)) {}

	// Claim [base, base + length) for device. Rejects zero length, overflow past 2^64 and
	// overlap with a range already claimed.
	Status insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length);

	// Dispatch an access; false when nobody claims the address (the caller decides what to do:
	// reads of unclaimed addresses should see all ones, as on real hardware).
	bool read(unsigned vcpu, uint64_t address, std::span<uint8_t> data) const;
	bool write(unsigned vcpu, uint64_t address, std::span<const uint8_t> data) const;

	const std::string &name() const { return name_; }

private:
	struct Range {
		uint64_t length;
		std::shared_ptr<BusDevice> device;
	};
	// Returns the range containing [address, address + size), or nullptr.
	const std::pair<const uint64_t, Range> *find(uint64_t address, uint64_t size) const;

	std::string name_;
	std::map<uint64_t, Range> ranges_; // keyed by base
};

} // namespace spindle

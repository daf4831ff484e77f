#include "common/format.h"
#include "devices/bus.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace spindle {

Status Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length)
{
	if (!device)
		return Error::invalid(name_ + ": no device to insert");
	const std::string what = name_ + ": cannot place " + std::string(device->name()) + " at " +
				 hex(base) + "+" + hex(length);
	if (length == 0)
		return Error::invalid(what + ": zero length");
	if (length - 1 > UINT64_MAX - base)
		return Error::invalid(what + ": range wraps past the end of the address space");
	const uint64_t last = base + length - 1;

	auto next = ranges_.lower_bound(base);
	if (next != ranges_.end() && next->first <= last)
		return Error::invalid(what + ": overlaps " + std::string(next->second.device->name()));
	if (next != ranges_.begin()) {
		auto prev = std::prev(next);
		if (prev->first + (prev->second.length - 1) >= base)
			return Error::invalid(what + ": overlaps " + std::string(prev->second.device->name()));
	}
	ranges_.emplace(base, Range{length, std::move(device)});
	return {};
}

const std::pair<const uint64_t, Bus::Range> *Bus::find(uint64_t address, uint64_t size) const
{
	auto it = ranges_.upper_bound(address);
	if (it == ranges_.begin())
		return nullptr;
	--it;
	const uint64_t offset = address - it->first;
	// The whole access must fit in the range; a straddling access is nobody's.
	if (offset >= it->second.length || size > it->second.length - offset)
		return nullptr;
	return &*it;
}

bool Bus::read(unsigned vcpu, uint64_t address, std::span<uint8_t> data) const
{
	const auto *entry = find(address, data.size());
	if (!entry)
		return false;
	// BusDevice::read promises that bytes a device leaves unwritten read as 0 (the 16550 fills
	// one byte of a wider IN); the buffer may hold the previous exit's data.
	std::fill(data.begin(), data.end(), uint8_t{0});
	entry->second.device->read(AccessInfo{vcpu, address - entry->first}, data);
	return true;
}

bool Bus::write(unsigned vcpu, uint64_t address, std::span<const uint8_t> data) const
{
	const auto *entry = find(address, data.size());
	if (!entry)
		return false;
	entry->second.device->write(AccessInfo{vcpu, address - entry->first}, data);
	return true;
}

} // namespace spindle

#include "devices/pv_device.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace spindle {

void PvDevice::read(const AccessInfo &, std::span<uint8_t> data)
{
	// Reading the port tells a probing guest which interface version is there.
	uint32_t version = SPINDLE_CPUID_VERSION;
	std::memcpy(data.data(), &version, std::min(data.size(), sizeof(version)));
}

void PvDevice::reject(unsigned vcpu, Error reason)
{
	malformed_.fetch_add(1, std::memory_order_relaxed);
	sink_.onMalformedPvRecord(vcpu, reason);
}

void PvDevice::write(const AccessInfo &access, std::span<const uint8_t> data)
{
	if (access.offset != 0 || data.size() != 4)
		return reject(access.vcpu, Error::invalid("PV port written with a " +
							  std::to_string(data.size()) + "-byte access at offset " +
							  std::to_string(access.offset) + "; expected a 32-bit OUT"));
	if (access.vcpu >= vcpuCount_)
		return reject(access.vcpu, Error::invalid("PV access from an unknown vCPU"));

	uint32_t length;
	std::memcpy(&length, data.data(), sizeof(length));

	const uint64_t mailbox = SPINDLE_MAILBOX_GPA + uint64_t{access.vcpu} * SPINDLE_MAILBOX_SIZE;
	if (mailbox + SPINDLE_MAILBOX_SIZE > guestRam_.size())
		return reject(access.vcpu, Error::invalid("mailbox lies outside guest RAM"));

	std::array<uint8_t, SPINDLE_MAILBOX_SIZE> copy;
	std::memcpy(copy.data(), guestRam_.data() + mailbox, copy.size());

	auto record = decodePvRecord(copy, length, PvLimits{vcpuCount_, guestRam_.size()});
	if (!record)
		return reject(access.vcpu, record.error());
	sink_.onPvRecord(access.vcpu, *record);
}

} // namespace spindle

#pragma once

// The Spindle PV device: a guest fills its mailbox in guest RAM and writes the record's length
// to SPINDLE_PV_PORT. The device copies the mailbox of the *accessing* vCPU (never an index the
// guest chose) out of guest memory before validating it, so a guest that rewrites its mailbox
// concurrently cannot change a record after it was checked.

#include <atomic>
#include <span>

#include "devices/bus.h"
#include "devices/pv_record.h"

namespace spindle {

// Receives validated records. Called on the vCPU thread that submitted the record: keep it short.
class PvRecordSink
{
public:
	virtual ~PvRecordSink() = default;
	virtual void onPvRecord(unsigned vcpu, const PvRecord &record) = 0;
	virtual void onMalformedPvRecord(unsigned vcpu, const Error &reason) = 0;
};

class PvDevice final : public BusDevice
{
public:
	// guestRam: host mapping of guest RAM from GPA 0; must outlive the device.
	PvDevice(std::span<uint8_t> guestRam, unsigned vcpuCount, PvRecordSink &sink)
		: guestRam_(guestRam), vcpuCount_(vcpuCount), sink_(sink)
	{
	}

	std::string_view name() const override { return "spindle-pv"; }
	void read(const AccessInfo &access, std::span<uint8_t> data) override;
	void write(const AccessInfo &access, std::span<const uint8_t> data) override;

	uint64_t malformedCount() const { return malformed_.load(std::memory_order_relaxed); }

private:
	void reject(unsigned vcpu, Error reason);

	std::span<uint8_t> guestRam_;
	unsigned vcpuCount_;
	PvRecordSink &sink_;
	std::atomic<uint64_t> malformed_{0};
};

} // namespace spindle

#include "devices/pv_record.h"

#include <cstring>

#include "common/format.h"

namespace spindle {

namespace {

template<typename T>
T copyOut(std::span<const uint8_t> bytes)
{
	T value;
	std::memcpy(&value, bytes.data(), sizeof(T));
	return value;
}

bool isPrintable(char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

Result<PvRecord> decodeError(std::span<const uint8_t> bytes)
{
	auto record = copyOut<spindle_pv_error>(bytes);
	const char *text = record.text;
	size_t length = strnlen(text, SPINDLE_PV_ERROR_TEXT_MAX);
	if (length == SPINDLE_PV_ERROR_TEXT_MAX)
		return Error::invalid("error record text is not NUL-terminated");
	std::string clean;
	clean.reserve(length);
	for (size_t i = 0; i < length; ++i)
		clean.push_back(isPrintable(text[i]) ? text[i] : '?');
	return PvRecord{PvGuestError{std::move(clean)}};
}

Result<PvRecord> decodeResultVcpu(std::span<const uint8_t> bytes)
{
	auto record = copyOut<spindle_pv_result_vcpu>(bytes);
	if (record.mode < SPINDLE_MODE_LOCK || record.mode > SPINDLE_MODE_CPU)
		return Error::invalid("vCPU result has unknown mode " + std::to_string(record.mode));
	return PvRecord{PvResultVcpu{record}};
}

Result<PvRecord> decodeResultVm(std::span<const uint8_t> bytes)
{
	auto record = copyOut<spindle_pv_result_vm>(bytes);
	if (record.mode < SPINDLE_MODE_LOCK || record.mode > SPINDLE_MODE_CPU)
		return Error::invalid("VM result has unknown mode " + std::to_string(record.mode));
	if (record.lock > SPINDLE_LOCK_KIND_MAX)
		return Error::invalid("VM result has unknown lock kind " + std::to_string(record.lock));
	if (record.duration_ns == 0)
		return Error::invalid("VM result has zero duration");
	return PvRecord{PvResultVm{record}};
}

// Reserved fields must be 0 (the ABI says so): a guest that sets them was written for a later
// version of the record, and guessing what it meant is worse than refusing it.
Result<PvRecord> decodeWait(std::span<const uint8_t> bytes, uint64_t ramBytes)
{
	auto record = copyOut<spindle_pv_wait>(bytes);
	if (record.reserved != 0)
		return Error::invalid("wait record has a non-zero reserved field");
	if (record.word_gpa != 0) {
		std::string problem = checkWaitWordGpa(record.word_gpa, ramBytes);
		if (!problem.empty())
			return Error::invalid("wait record: " + problem);
	}
	uint64_t timeout = record.timeout_ns;
	if (timeout == 0 || timeout > SPINDLE_PV_WAIT_MAX_NS)
		timeout = SPINDLE_PV_WAIT_MAX_NS;
	return PvRecord{PvWait{record.word_gpa, record.expected, timeout}};
}

Result<PvRecord> decodeKick(std::span<const uint8_t> bytes, unsigned vcpuCount)
{
	auto record = copyOut<spindle_pv_kick>(bytes);
	if (record.reserved != 0)
		return Error::invalid("kick record has a non-zero reserved field");
	if (record.vcpu >= vcpuCount)
		return Error::invalid("kick record names vCPU " + std::to_string(record.vcpu) + " of " +
				      std::to_string(vcpuCount));
	return PvRecord{PvKick{record.vcpu}};
}

size_t expectedLength(uint16_t type)
{
	switch (type) {
	case SPINDLE_PV_READY:
	case SPINDLE_PV_HALT:
		return sizeof(spindle_pv_header);
	case SPINDLE_PV_EXIT:
		return sizeof(spindle_pv_exit);
	case SPINDLE_PV_ERROR:
		return sizeof(spindle_pv_error);
	case SPINDLE_PV_LONG_SPIN:
		return sizeof(spindle_pv_long_spin);
	case SPINDLE_PV_RESULT_VCPU:
		return sizeof(spindle_pv_result_vcpu);
	case SPINDLE_PV_RESULT_VM:
		return sizeof(spindle_pv_result_vm);
	case SPINDLE_PV_WAIT:
		return sizeof(spindle_pv_wait);
	case SPINDLE_PV_KICK:
		return sizeof(spindle_pv_kick);
	default:
		return 0;
	}
}

} // namespace

std::string checkWaitWordGpa(uint64_t gpa, uint64_t ramBytes)
{
	if (gpa == 0)
		return "word address is 0";
	if (gpa % 4 != 0)
		return "word address " + hex(gpa) + " is not 4-byte aligned";
	if (ramBytes == 0)
		return "word address " + hex(gpa) + " cannot be checked: the decoder was not given the guest RAM size";
	// Written so that a gpa near UINT64_MAX cannot wrap around the bound.
	if (ramBytes < 4 || gpa > ramBytes - 4)
		return "word address " + hex(gpa) + " lies outside guest RAM";
	if (gpa + 4 > SPINDLE_MMIO_HOLE_GPA && gpa < SPINDLE_KERNEL_MIN_GPA)
		return "word address " + hex(gpa) + " lies in the MMIO hole";
	return {};
}

Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength,
				unsigned vcpuCount)
{
	return decodePvRecord(mailbox, announcedLength, PvLimits{vcpuCount, 0});
}

Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength, const PvLimits &limits)
{
	const unsigned vcpuCount = limits.vcpuCount;
	if (announcedLength < sizeof(spindle_pv_header) || announcedLength > mailbox.size())
		return Error::invalid("record length " + std::to_string(announcedLength) +
				      " outside [header, mailbox]");
	auto header = copyOut<spindle_pv_header>(mailbox);
	if (header.magic != SPINDLE_PV_MAGIC)
		return Error::invalid("bad record magic");
	if (header.length != announcedLength)
		return Error::invalid("record length field " + std::to_string(header.length) +
				      " differs from the announced " + std::to_string(announcedLength));
	const size_t expected = expectedLength(header.type);
	if (expected == 0)
		return Error::invalid("unknown record type " + std::to_string(header.type));
	if (header.length != expected)
		return Error::invalid("record type " + std::to_string(header.type) + " has length " +
				      std::to_string(header.length) + ", expected " + std::to_string(expected));
	auto bytes = mailbox.first(expected);

	switch (header.type) {
	case SPINDLE_PV_READY:
		return PvRecord{PvReady{}};
	case SPINDLE_PV_HALT:
		return PvRecord{PvHalt{}};
	case SPINDLE_PV_EXIT: {
		auto record = copyOut<spindle_pv_exit>(bytes);
		if (record.code < 0 || record.code > 255)
			return Error::invalid("exit code " + std::to_string(record.code) + " outside 0..255");
		return PvRecord{PvExit{record.code}};
	}
	case SPINDLE_PV_ERROR:
		return decodeError(bytes);
	case SPINDLE_PV_LONG_SPIN: {
		auto record = copyOut<spindle_pv_long_spin>(bytes);
		if (record.waits_on != SPINDLE_VCPU_NONE && record.waits_on >= vcpuCount)
			return Error::invalid("long-spin record names vCPU " + std::to_string(record.waits_on) +
					      " of " + std::to_string(vcpuCount));
		return PvRecord{PvLongSpin{record.lock_id, record.waits_on, record.spins}};
	}
	case SPINDLE_PV_RESULT_VCPU:
		return decodeResultVcpu(bytes);
	case SPINDLE_PV_RESULT_VM:
		return decodeResultVm(bytes);
	case SPINDLE_PV_WAIT:
		return decodeWait(bytes, limits.ramBytes);
	case SPINDLE_PV_KICK:
		return decodeKick(bytes, vcpuCount);
	}
	return Error::invalid("unknown record type");
}

} // namespace spindle

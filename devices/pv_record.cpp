#include "devices/pv_record.h"

#include <cstring>

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
	if (record.lock > SPINDLE_LOCK_PVTICKET)
		return Error::invalid("VM result has unknown lock kind " + std::to_string(record.lock));
	if (record.duration_ns == 0)
		return Error::invalid("VM result has zero duration");
	return PvRecord{PvResultVm{record}};
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
	default:
		return 0;
	}
}

} // namespace

Result<PvRecord> decodePvRecord(std::span<const uint8_t> mailbox, uint32_t announcedLength,
				unsigned vcpuCount)
{
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
	}
	return Error::invalid("unknown record type");
}

} // namespace spindle

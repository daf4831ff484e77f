// Fuzzes the PV record decoder (devices/pv_record.h): the bytes of a hostile guest's mailbox.
//
// Input: the announced length (u32, the guest's OUT value), the vCPU count (u16, taken mod 257),
// a framing byte, then the mailbox (at most SPINDLE_MAILBOX_SIZE bytes, passed as exactly the bytes
// given, so a read past them is a heap overflow). Framing bit 0 writes the magic, bit 1 makes the
// header's length and the announced length the exact size of the header's type: most inputs then
// reach the per-type checks of every record type. Bits 2-3 choose the guest RAM size the decoder
// is given (unknown, 4 MiB, 64 MiB, 62 GiB), which bounds a WAIT's word address.
// Contract (guest-kernels/README.md, section 6): the decoder accepts exactly the records whose
// announced length is within [header, mailbox], whose magic is right, whose length field equals
// the announced length and its type's size, and whose fields obey their type's limits (EXIT code
// 0..255; ERROR text NUL-terminated within 192 bytes; LONG_SPIN waits_on none or < vCPU count;
// results' mode 1..3, VM lock 0..7 and duration > 0; WAIT reserved 0 and a word address of 0 or
// of an aligned u32 of guest RAM outside the MMIO hole; KICK reserved 0 and a vCPU < count). An accepted record is of the header's type,
// carries the mailbox's values (ERROR text up to its NUL, non-printable characters as '?'), and
// obeys the limits. A rejection is a one-line input error.

#include <cstring>
#include <optional>
#include <vector>

#include "devices/pv_record.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/pv_contract.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

std::optional<size_t> recordSize(uint16_t type)
{
	switch (type) {
	case SPINDLE_PV_READY: return sizeof(spindle_pv_header);
	case SPINDLE_PV_HALT: return sizeof(spindle_pv_header);
	case SPINDLE_PV_WAIT: return sizeof(spindle_pv_wait);
	case SPINDLE_PV_KICK: return sizeof(spindle_pv_kick);
	case SPINDLE_PV_EXIT: return sizeof(spindle_pv_exit);
	case SPINDLE_PV_ERROR: return sizeof(spindle_pv_error);
	case SPINDLE_PV_LONG_SPIN: return sizeof(spindle_pv_long_spin);
	case SPINDLE_PV_RESULT_VCPU: return sizeof(spindle_pv_result_vcpu);
	case SPINDLE_PV_RESULT_VM: return sizeof(spindle_pv_result_vm);
	default: return std::nullopt;
	}
}

template<typename T>
T read(const std::vector<uint8_t> &bytes)
{
	T value;
	std::memcpy(&value, bytes.data(), sizeof(T));
	return value;
}

// The documented verdict, from the raw bytes.
// The ABI's rule for a WAIT's word address (guest-kernels/abi/spindle_abi.h), in 128 bits.
bool waitWordOk(uint64_t gpa, uint64_t ramBytes)
{
	if (gpa == 0)
		return true;
	const unsigned __int128 end = static_cast<unsigned __int128>(gpa) + 4;
	const bool inHole = end > SPINDLE_MMIO_HOLE_GPA && gpa < SPINDLE_KERNEL_MIN_GPA;
	return gpa % 4 == 0 && end <= ramBytes && !inHole;
}

bool valid(const std::vector<uint8_t> &mailbox, uint32_t announced, unsigned vcpuCount, uint64_t ramBytes)
{
	if (announced < sizeof(spindle_pv_header) || announced > mailbox.size())
		return false;
	const auto header = read<spindle_pv_header>(mailbox);
	const auto size = recordSize(header.type);
	if (header.magic != SPINDLE_PV_MAGIC || header.length != announced || !size || header.length != *size)
		return false;
	switch (header.type) {
	case SPINDLE_PV_EXIT: {
		const int32_t code = read<spindle_pv_exit>(mailbox).code;
		return code >= 0 && code <= 255;
	}
	case SPINDLE_PV_ERROR: {
		const auto record = read<spindle_pv_error>(mailbox);
		return std::memchr(record.text, '\0', sizeof(record.text)) != nullptr;
	}
	case SPINDLE_PV_LONG_SPIN: {
		const uint32_t waitsOn = read<spindle_pv_long_spin>(mailbox).waits_on;
		return waitsOn == SPINDLE_VCPU_NONE || waitsOn < vcpuCount;
	}
	case SPINDLE_PV_RESULT_VCPU: {
		const uint32_t mode = read<spindle_pv_result_vcpu>(mailbox).mode;
		return mode >= SPINDLE_MODE_LOCK && mode <= SPINDLE_MODE_CPU;
	}
	case SPINDLE_PV_RESULT_VM: {
		const auto record = read<spindle_pv_result_vm>(mailbox);
		return record.mode >= SPINDLE_MODE_LOCK && record.mode <= SPINDLE_MODE_CPU &&
		       record.lock <= SPINDLE_LOCK_PVHALT && record.duration_ns != 0;
	}
	case SPINDLE_PV_WAIT: {
		const auto record = read<spindle_pv_wait>(mailbox);
		return record.reserved == 0 && waitWordOk(record.word_gpa, ramBytes);
	}
	case SPINDLE_PV_KICK: {
		const auto record = read<spindle_pv_kick>(mailbox);
		return record.reserved == 0 && record.vcpu < vcpuCount;
	}
	default:
		return true;
	}
}

// An accepted record carries exactly what the mailbox says.
void requireSameValues(const PvRecord &record, const std::vector<uint8_t> &mailbox)
{
	const auto header = read<spindle_pv_header>(mailbox);
	switch (header.type) {
	case SPINDLE_PV_READY:
		FUZZ_REQUIRE(std::holds_alternative<PvReady>(record));
		break;
	case SPINDLE_PV_HALT:
		FUZZ_REQUIRE(std::holds_alternative<PvHalt>(record));
		break;
	case SPINDLE_PV_WAIT: {
		FUZZ_REQUIRE(std::holds_alternative<PvWait>(record));
		const auto &wait = std::get<PvWait>(record);
		const auto raw = read<spindle_pv_wait>(mailbox);
		const uint64_t timeout =
			raw.timeout_ns == 0 || raw.timeout_ns > SPINDLE_PV_WAIT_MAX_NS ? SPINDLE_PV_WAIT_MAX_NS : raw.timeout_ns;
		FUZZ_REQUIRE(wait.wordGpa == raw.word_gpa && wait.expected == raw.expected && wait.timeoutNs == timeout);
		break;
	}
	case SPINDLE_PV_KICK:
		FUZZ_REQUIRE(std::holds_alternative<PvKick>(record));
		FUZZ_REQUIRE(std::get<PvKick>(record).vcpu == read<spindle_pv_kick>(mailbox).vcpu);
		break;
	case SPINDLE_PV_EXIT:
		FUZZ_REQUIRE(std::holds_alternative<PvExit>(record));
		FUZZ_REQUIRE(std::get<PvExit>(record).code == read<spindle_pv_exit>(mailbox).code);
		break;
	case SPINDLE_PV_ERROR: {
		FUZZ_REQUIRE(std::holds_alternative<PvGuestError>(record));
		const std::string &text = std::get<PvGuestError>(record).text;
		const auto raw = read<spindle_pv_error>(mailbox);
		FUZZ_REQUIRE(text.size() == strnlen(raw.text, sizeof(raw.text)));
		for (size_t i = 0; i < text.size(); ++i)
			FUZZ_REQUIRE(text[i] == (isPrintableText(raw.text[i]) ? raw.text[i] : '?'));
		break;
	}
	case SPINDLE_PV_LONG_SPIN: {
		FUZZ_REQUIRE(std::holds_alternative<PvLongSpin>(record));
		const auto &spin = std::get<PvLongSpin>(record);
		const auto raw = read<spindle_pv_long_spin>(mailbox);
		FUZZ_REQUIRE(spin.lockId == raw.lock_id && spin.waitsOn == raw.waits_on && spin.spins == raw.spins);
		break;
	}
	case SPINDLE_PV_RESULT_VCPU:
		FUZZ_REQUIRE(std::holds_alternative<PvResultVcpu>(record));
		FUZZ_REQUIRE(std::memcmp(&std::get<PvResultVcpu>(record).raw, mailbox.data(),
					 sizeof(spindle_pv_result_vcpu)) == 0);
		break;
	case SPINDLE_PV_RESULT_VM:
		FUZZ_REQUIRE(std::holds_alternative<PvResultVm>(record));
		FUZZ_REQUIRE(std::memcmp(&std::get<PvResultVm>(record).raw, mailbox.data(),
					 sizeof(spindle_pv_result_vm)) == 0);
		break;
	default:
		FUZZ_REQUIRE(false); // an unknown type was accepted
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	uint32_t announced = in.take<uint32_t>();
	const unsigned vcpuCount = in.take<uint16_t>() % (SPINDLE_MAX_VCPUS + 1);
	const uint8_t framing = in.take<uint8_t>();
	std::vector<uint8_t> mailbox(in.rest(), in.rest() + std::min<size_t>(in.restSize(), SPINDLE_MAILBOX_SIZE));

	if (mailbox.size() >= sizeof(spindle_pv_header)) {
		auto header = read<spindle_pv_header>(mailbox);
		if (framing & 1)
			header.magic = SPINDLE_PV_MAGIC;
		if (framing & 2) {
			if (auto expected = recordSize(header.type)) {
				header.length = static_cast<uint16_t>(*expected);
				announced = header.length;
			}
		}
		std::memcpy(mailbox.data(), &header, sizeof(header));
	}

	static constexpr uint64_t kRamChoices[] = { 0, 4ull << 20, 64ull << 20, 62ull << 30 };
	const uint64_t ramBytes = kRamChoices[(framing >> 2) & 3];
	const auto record = decodePvRecord(mailbox, announced, PvLimits{vcpuCount, ramBytes});
	FUZZ_REQUIRE(record.ok() == valid(mailbox, announced, vcpuCount, ramBytes));
	if (!record) {
		requireOneLineInputError(record.error());
		return 0;
	}
	requireSameValues(*record, mailbox);
	requireRecordLimits(*record, vcpuCount);
	return 0;
}

#include "devices/serial.h"

namespace spindle {

namespace {
constexpr uint64_t kThr = 0, kLcr = 3, kLsr = 5, kScr = 7;
constexpr uint8_t kLsrThrEmpty = 0x20, kLsrTxEmpty = 0x40, kLcrDlab = 0x80;
} // namespace

void Serial::read(const AccessInfo &access, std::span<uint8_t> data)
{
	uint8_t value = 0;
	std::lock_guard lock(mutex_);
	switch (access.offset) {
	case kLcr:
		value = lineControl_;
		break;
	case kLsr:
		value = kLsrThrEmpty | kLsrTxEmpty;
		break;
	case kScr:
		value = scratch_;
		break;
	default:
		value = 0;
	}
	if (!data.empty())
		data[0] = value;
}

void Serial::write(const AccessInfo &access, std::span<const uint8_t> data)
{
	if (data.empty())
		return;
	const uint8_t value = data[0];
	std::lock_guard lock(mutex_);
	switch (access.offset) {
	case kThr:
		if (lineControl_ & kLcrDlab)
			return; // divisor latch, not data
		if (value == '\n' || line_.size() >= kMaxLine) {
			sink_(line_);
			line_.clear();
			if (value == '\n')
				return;
		}
		if (value != '\r')
			line_.push_back(static_cast<char>(value));
		return;
	case kLcr:
		lineControl_ = value;
		return;
	case kScr:
		scratch_ = value;
		return;
	default:
		return;
	}
}

void Serial::flush()
{
	std::lock_guard lock(mutex_);
	if (!line_.empty()) {
		sink_(line_);
		line_.clear();
	}
}

} // namespace spindle

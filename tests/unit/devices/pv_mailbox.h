#pragma once

// Builders for PV records as a guest would leave them in its mailbox, shared by the devices
// tests.

#include <cstdint>
#include <cstring>
#include <vector>

#include "spindle_abi.h"

namespace spindle::test {

// A whole mailbox (SPINDLE_MAILBOX_SIZE bytes, zero beyond the record) holding `record`.
template<typename T>
std::vector<uint8_t> mailboxWith(const T &record)
{
	std::vector<uint8_t> mailbox(SPINDLE_MAILBOX_SIZE, 0);
	std::memcpy(mailbox.data(), &record, sizeof(T));
	return mailbox;
}

// A zeroed record of type T with a valid header of `type` and T's size.
template<typename T>
T withHeader(uint16_t type)
{
	T record{};
	record.header.magic = SPINDLE_PV_MAGIC;
	record.header.type = type;
	record.header.length = sizeof(T);
	return record;
}

} // namespace spindle::test

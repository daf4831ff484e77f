#pragma once

// Guest RAM: one anonymous host mapping that backs guest physical addresses [0, size).
// All access by GPA is bounds-checked; nothing may ever read or write outside the mapping.

#include <cstdint>
#include <cstring>
#include <span>

#include "common/result.h"

namespace spindle {

class GuestMemory
{
public:
	// size must be a multiple of the 4 KiB page size and non-zero.
	static Result<GuestMemory> create(uint64_t size);

	GuestMemory(GuestMemory &&other) noexcept;
	GuestMemory &operator=(GuestMemory &&other) noexcept;
	GuestMemory(const GuestMemory &) = delete;
	GuestMemory &operator=(const GuestMemory &) = delete;
	~GuestMemory();

	uint64_t size() const { return size_; }
	uint8_t *hostBase() const { return base_; }
	std::span<uint8_t> bytes() const { return {base_, size_}; }

	// True when [gpa, gpa + length) lies inside guest RAM (overflow-safe).
	bool contains(uint64_t gpa, uint64_t length) const
	{
		return gpa <= size_ && length <= size_ - gpa;
	}

	// Host pointer to [gpa, gpa + length), or nullptr when it leaves guest RAM.
	uint8_t *hostPointer(uint64_t gpa, uint64_t length) const
	{
		return contains(gpa, length) ? base_ + gpa : nullptr;
	}

	Status write(uint64_t gpa, std::span<const uint8_t> data);
	Status read(uint64_t gpa, std::span<uint8_t> data) const;

	template<typename T>
	Status writeObject(uint64_t gpa, const T &value)
	{
		return write(gpa, {reinterpret_cast<const uint8_t *>(&value), sizeof(T)});
	}

private:
	GuestMemory(uint8_t *base, uint64_t size) : base_(base), size_(size) {}
	void release();

	uint8_t *base_ = nullptr;
	uint64_t size_ = 0;
};

} // namespace spindle

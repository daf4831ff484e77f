#include "vmm/kvm/guest_memory.h"

#include <sys/mman.h>

#include <utility>

namespace spindle {

Result<GuestMemory> GuestMemory::create(uint64_t size)
{
	if (size == 0 || size % 4096 != 0)
		return Error::invalid("guest memory size must be a non-zero multiple of 4 KiB");
	// MAP_NORESERVE: guest RAM is touched lazily; a small guest in a big VM costs little.
	void *base = mmap(nullptr, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return Error::fromErrno("mapping " + std::to_string(size >> 20) + " MiB of guest memory");
	return GuestMemory(static_cast<uint8_t *>(base), size);
}

GuestMemory::GuestMemory(GuestMemory &&other) noexcept
	: base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0))
{
}

GuestMemory &GuestMemory::operator=(GuestMemory &&other) noexcept
{
	if (this != &other) {
		release();
		base_ = std::exchange(other.base_, nullptr);
		size_ = std::exchange(other.size_, 0);
	}
	return *this;
}

GuestMemory::~GuestMemory()
{
	release();
}

void GuestMemory::release()
{
	if (base_)
		munmap(base_, size_);
	base_ = nullptr;
	size_ = 0;
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data)
{
	if (!contains(gpa, data.size()))
		return Error(EFAULT, "guest write of " + std::to_string(data.size()) + " bytes at " +
					     std::to_string(gpa) + " leaves guest RAM");
	std::memcpy(base_ + gpa, data.data(), data.size());
	return {};
}

Status GuestMemory::read(uint64_t gpa, std::span<uint8_t> data) const
{
	if (!contains(gpa, data.size()))
		return Error(EFAULT, "guest read of " + std::to_string(data.size()) + " bytes at " +
					     std::to_string(gpa) + " leaves guest RAM");
	std::memcpy(data.data(), base_ + gpa, data.size());
	return {};
}

} // namespace spindle

#pragma once

// The guests built by this project and embedded in the spindle binary, so that
// `spindle run hello` needs no path. The table is generated at build time (guest-kernels/meson.build).

#include <cstdint>
#include <span>
#include <string_view>

namespace spindle {

struct BundledGuest {
	std::string_view name;        // what `spindle run NAME` accepts
	std::string_view description; // one line for --help
	std::span<const uint8_t> elf; // the ELF64 image
};

std::span<const BundledGuest> bundledGuests();
const BundledGuest *findBundledGuest(std::string_view name);

} // namespace spindle

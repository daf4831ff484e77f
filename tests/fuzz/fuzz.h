#pragma once

// What the fuzz targets share. Each target asserts the contract of the code it drives, not only
// that nothing crashes: a violated contract prints the condition and traps, so libFuzzer keeps the
// input as a crash; ASan and UBSan report any read or write outside the input.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

// A macro so that the message names the line of the check (clang 14 has no std::source_location
// with libstdc++ 12).
#define FUZZ_REQUIRE(condition)                                                                  \
	do {                                                                                     \
		if (!(condition))                                                                \
			::spindle::fuzz::violated(#condition, __FILE__, __LINE__);                 \
	} while (0)

namespace spindle::fuzz {

[[noreturn]] inline void violated(const char *condition, const char *file, int line)
{
	std::fprintf(stderr, "fuzz: contract violated at %s:%d: %s\n", file, line, condition);
	std::fflush(stderr);
	__builtin_trap();
}

// A rejection of bad input is an input error (not an errno) with a message: the CLI prints it as
// the user's one line. Result<T> already makes "both a value and an error" impossible.
inline void requireInputError(const Error &error)
{
	FUZZ_REQUIRE(error.isInput());
	FUZZ_REQUIRE(!error.context().empty());
}

// The same, for messages the code composes without quoting the input: exactly one line.
inline void requireOneLineInputError(const Error &error)
{
	requireInputError(error);
	FUZZ_REQUIRE(error.message().find('\n') == std::string::npos);
}

template<typename T>
bool unique(const std::vector<T> &values)
{
	return std::set<T>(values.begin(), values.end()).size() == values.size();
}

inline std::string_view asText(const uint8_t *data, size_t size)
{
	return { reinterpret_cast<const char *>(data), size };
}

// An argv from fuzz bytes: NUL separates the arguments, as it does in a real argv. Empty input is
// no argument at all; "a\0" is "a" and "".
inline std::vector<std::string> splitArguments(std::string_view text)
{
	std::vector<std::string> args;
	if (text.empty())
		return args;
	size_t start = 0;
	while (true) {
		size_t nul = text.find('\0', start);
		args.emplace_back(text.substr(start, nul == std::string_view::npos ? std::string_view::npos : nul - start));
		if (nul == std::string_view::npos)
			return args;
		start = nul + 1;
	}
}

// Reads little-endian integers off the front of the input; missing bytes read as zero.
class ByteReader
{
public:
	ByteReader(const uint8_t *data, size_t size) : data_(data), size_(size) {}

	template<typename T>
	T take()
	{
		T value = 0;
		for (size_t i = 0; i < sizeof(T); ++i)
			if (pos_ < size_)
				value = static_cast<T>(value | static_cast<T>(static_cast<T>(data_[pos_++]) << (8 * i)));
		return value;
	}

	// What is left, as the rest of the input.
	const uint8_t *rest() const { return data_ + pos_; }
	size_t restSize() const { return size_ - pos_; }
	std::string_view restText() const { return asText(rest(), restSize()); }

private:
	const uint8_t *data_;
	size_t size_;
	size_t pos_ = 0;
};

} // namespace spindle::fuzz

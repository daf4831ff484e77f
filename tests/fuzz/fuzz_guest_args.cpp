// Fuzzes the guests' argument splitter and number parser (guest-kernels/runtime/args.h), which run
// in the guest on the args string of the boot info, and the formatter the guests print tokens with.
//
// Input: 8 bytes of `max` for parseDecimal, then the args string (cut at the first NUL and at
// SPINDLE_BOOT_ARGS_MAX - 1 bytes, as the host writes it).
// Contract:
//   ArgCursor yields exactly the space-separated words of the string, in order, as views into it;
//     a word with '=' has key = the text before the first '=' and value = the rest, one without
//     has key = the word and an empty value;
//   StrView == literal is plain equality (never reading past either end);
//   parseDecimal(value, max) accepts exactly the all-digit values <= max, returns that value, and
//     leaves its output alone when it rejects;
//   format("%.*s") of a view reads at most the view's length (the copy given to it has no NUL
//     after it, so a read past it is a heap overflow) and writes the view, truncated to the buffer.

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "guest-kernels/abi/spindle_abi.h"
#include "guest-kernels/runtime/args.h"
#include "guest-kernels/runtime/format.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/oracles.h"

using namespace spindle::guest;
using namespace spindle::fuzz;

namespace {

std::string_view view(StrView text)
{
	return { text.data, text.size };
}

// The reference split: words separated by runs of spaces.
std::vector<std::string_view> words(std::string_view text)
{
	std::vector<std::string_view> out;
	size_t i = 0;
	while (i < text.size()) {
		if (text[i] == ' ') {
			++i;
			continue;
		}
		size_t end = text.find(' ', i);
		if (end == std::string_view::npos)
			end = text.size();
		out.push_back(text.substr(i, end - i));
		i = end;
	}
	return out;
}

void checkLiteralCompare(StrView text, const char *literal)
{
	FUZZ_REQUIRE((text == literal) == (view(text) == std::string_view(literal)));
}

void checkDecimal(StrView text, uint64_t max)
{
	constexpr uint64_t kUntouched = 0x5eed5eed5eed5eedull;
	uint64_t value = kUntouched;
	const bool accepted = parseDecimal(text, max, value);
	const auto exact = decimalValue(view(text));
	FUZZ_REQUIRE(accepted == (exact && *exact <= max));
	FUZZ_REQUIRE(accepted ? value == *exact : value == kUntouched);
}

void checkFormat(StrView text, size_t cap)
{
	// Exactly the view's bytes, nothing after them.
	std::unique_ptr<char[]> copy(new char[text.size ? text.size : 1]);
	std::memcpy(copy.get(), text.data, text.size);
	std::unique_ptr<char[]> out(new char[cap]);
	const size_t written = format(out.get(), cap, "%.*s", text.printLength(), copy.get());
	const size_t expected = std::min(text.size, cap - 1);
	FUZZ_REQUIRE(written == expected);
	FUZZ_REQUIRE(std::memcmp(out.get(), text.data, expected) == 0 && out[expected] == '\0');
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	const uint64_t max = in.take<uint64_t>();
	std::string_view rest = in.restText();
	rest = rest.substr(0, std::min<size_t>(rest.find('\0'), SPINDLE_BOOT_ARGS_MAX - 1));
	const std::string args(rest); // NUL-terminated, as in the boot info

	const std::vector<std::string_view> expected = words(args);
	ArgCursor cursor(args.c_str());
	ArgToken token;
	size_t count = 0;
	while (cursor.next(token)) {
		FUZZ_REQUIRE(count < expected.size());
		const std::string_view word = expected[count++];
		// The very bytes of the string, not a copy.
		FUZZ_REQUIRE(token.text.data == word.data());
		FUZZ_REQUIRE(view(token.text) == word);
		const size_t equals = word.find('=');
		FUZZ_REQUIRE(token.hasValue == (equals != std::string_view::npos));
		if (token.hasValue) {
			FUZZ_REQUIRE(view(token.key) == word.substr(0, equals));
			FUZZ_REQUIRE(view(token.value) == word.substr(equals + 1));
		} else {
			FUZZ_REQUIRE(view(token.key) == word);
			FUZZ_REQUIRE(token.value.size == 0);
		}

		checkLiteralCompare(token.key, "mode");
		checkLiteralCompare(token.key, "");
		checkLiteralCompare(token.value, "pvticket");
		checkLiteralCompare(token.value, std::string(view(token.value)).c_str());
		checkDecimal(token.value, max);
		checkDecimal(token.value, 255); // what hello's exit= uses
		checkFormat(token.text, 1 + max % 64);
	}
	FUZZ_REQUIRE(count == expected.size());
	// The end is sticky.
	FUZZ_REQUIRE(!cursor.next(token));
	return 0;
}

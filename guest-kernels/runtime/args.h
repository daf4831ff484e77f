#pragma once

// Guest arguments arrive in boot_info.args as space-separated `key=value` tokens. This header
// splits them without copying and without a C library, so the same code runs on the host tests.

#include <stddef.h>
#include <stdint.h>

namespace spindle::guest {

// A non-owning view of characters (freestanding code has no std::string_view).
struct StrView {
	const char *data = nullptr;
	size_t size = 0;

	bool operator==(const char *literal) const
	{
		// Walks the literal, so it never reads past either end.
		size_t i = 0;
		for (; literal[i] != '\0'; i++) {
			if (i >= size || literal[i] != data[i])
				return false;
		}
		return i == size;
	}

	int printLength() const { return static_cast<int>(size); } // for "%.*s"
};

struct ArgToken {
	StrView text;  // the whole token, for messages
	StrView key;
	StrView value;
	bool hasValue; // false if the token has no '='
};

class ArgCursor
{
public:
	explicit ArgCursor(const char *args) : p_(args) {}

	// The next token, or false at the end. Runs of spaces are skipped.
	bool next(ArgToken &token)
	{
		while (*p_ == ' ')
			p_++;
		if (*p_ == '\0')
			return false;
		const char *start = p_;
		const char *equals = nullptr;
		for (; *p_ != '\0' && *p_ != ' '; p_++) {
			if (*p_ == '=' && !equals)
				equals = p_;
		}
		token.text = { start, static_cast<size_t>(p_ - start) };
		token.hasValue = equals != nullptr;
		if (equals) {
			token.key = { start, static_cast<size_t>(equals - start) };
			token.value = { equals + 1, static_cast<size_t>(p_ - equals - 1) };
		} else {
			token.key = token.text;
			token.value = {};
		}
		return true;
	}

private:
	const char *p_;
};

// A decimal unsigned integer filling all of `text`, at most `max`.
inline bool parseDecimal(StrView text, uint64_t max, uint64_t &value)
{
	if (text.size == 0)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < text.size; i++) {
		char c = text.data[i];
		if (c < '0' || c > '9')
			return false;
		uint64_t digit = static_cast<uint64_t>(c - '0');
		// digit > max first: max - digit would wrap for a max below 9.
		if (digit > max || v > (max - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	value = v;
	return true;
}

} // namespace spindle::guest

#pragma once

// A strict JSON syntax check for tests (RFC 8259: one value, objects, arrays, strings with
// escapes, numbers, true/false/null), so a test can say "this file is valid JSON" rather than
// search it for a few substrings. No DOM: tests still look values up by text.

#include <cctype>
#include <string>
#include <string_view>

namespace spindle::test {

class JsonChecker
{
public:
	// Empty when text is exactly one valid JSON value (whitespace around it allowed), else why not.
	static std::string problem(std::string_view text)
	{
		JsonChecker checker(text);
		checker.skipSpace();
		if (!checker.value())
			return checker.why_;
		checker.skipSpace();
		if (checker.pos_ != text.size())
			return "trailing characters at offset " + std::to_string(checker.pos_);
		return {};
	}

private:
	explicit JsonChecker(std::string_view text) : text_(text) {}

	bool fail(const std::string &what)
	{
		if (why_.empty())
			why_ = what + " at offset " + std::to_string(pos_);
		return false;
	}
	bool atEnd() const { return pos_ >= text_.size(); }
	char peek() const { return atEnd() ? '\0' : text_[pos_]; }
	void skipSpace()
	{
		while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
			++pos_;
	}
	bool literal(std::string_view word)
	{
		if (text_.substr(pos_, word.size()) != word)
			return fail("bad literal");
		pos_ += word.size();
		return true;
	}

	bool value()
	{
		if (++depth_ > 200)
			return fail("nesting too deep");
		bool ok;
		switch (peek()) {
		case '{': ok = object(); break;
		case '[': ok = array(); break;
		case '"': ok = string(); break;
		case 't': ok = literal("true"); break;
		case 'f': ok = literal("false"); break;
		case 'n': ok = literal("null"); break;
		default: ok = number(); break;
		}
		--depth_;
		return ok;
	}

	bool object()
	{
		++pos_;
		skipSpace();
		if (peek() == '}')
			return ++pos_, true;
		for (;;) {
			skipSpace();
			if (peek() != '"' || !string())
				return fail("expected a member name");
			skipSpace();
			if (peek() != ':')
				return fail("expected ':'");
			++pos_;
			skipSpace();
			if (!value())
				return false;
			skipSpace();
			if (peek() == ',') {
				++pos_;
				continue;
			}
			if (peek() == '}')
				return ++pos_, true;
			return fail("expected ',' or '}'");
		}
	}

	bool array()
	{
		++pos_;
		skipSpace();
		if (peek() == ']')
			return ++pos_, true;
		for (;;) {
			skipSpace();
			if (!value())
				return false;
			skipSpace();
			if (peek() == ',') {
				++pos_;
				continue;
			}
			if (peek() == ']')
				return ++pos_, true;
			return fail("expected ',' or ']'");
		}
	}

	bool string()
	{
		++pos_;
		while (!atEnd()) {
			const unsigned char c = static_cast<unsigned char>(text_[pos_++]);
			if (c == '"')
				return true;
			if (c < 0x20)
				return fail("control character in a string");
			if (c != '\\')
				continue;
			const char e = peek();
			++pos_;
			if (e == 'u') {
				for (int i = 0; i < 4; ++i, ++pos_)
					if (!std::isxdigit(static_cast<unsigned char>(peek())))
						return fail("bad \\u escape");
			} else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
				return fail("bad escape");
			}
		}
		return fail("unterminated string");
	}

	bool digits()
	{
		const size_t start = pos_;
		while (std::isdigit(static_cast<unsigned char>(peek())))
			++pos_;
		return pos_ > start;
	}

	bool number()
	{
		if (peek() == '-')
			++pos_;
		if (peek() == '0')
			++pos_;
		else if (!digits())
			return fail("expected a value");
		if (peek() == '.') {
			++pos_;
			if (!digits())
				return fail("bad fraction");
		}
		if (peek() == 'e' || peek() == 'E') {
			++pos_;
			if (peek() == '+' || peek() == '-')
				++pos_;
			if (!digits())
				return fail("bad exponent");
		}
		return true;
	}

	std::string_view text_;
	size_t pos_ = 0;
	int depth_ = 0;
	std::string why_;
};

} // namespace spindle::test

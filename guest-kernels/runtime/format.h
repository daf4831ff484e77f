#pragma once

// A small printf-like formatter into a fixed buffer, portable so the host tests can check it.
// Supports %% %c %s %.*s %d %i %u %x with an optional 0 flag and width, and the length
// modifiers l, ll and z. Output is truncated to fit and always NUL-terminated.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

namespace spindle::guest {

class FormatSink
{
public:
	FormatSink(char *buf, size_t cap) : buf_(buf), cap_(cap)
	{
		if (cap_)
			buf_[0] = '\0';
	}

	void put(char c)
	{
		if (len_ + 1 < cap_) {
			buf_[len_++] = c;
			buf_[len_] = '\0';
		}
	}

	void put(const char *s, size_t n)
	{
		for (size_t i = 0; i < n; i++)
			put(s[i]);
	}

	size_t length() const { return len_; }

private:
	char *buf_;
	size_t cap_;
	size_t len_ = 0;
};

namespace detail {

inline void formatUnsigned(FormatSink &out, uint64_t value, unsigned base, size_t width, char pad,
			   bool negative)
{
	char digits[24];
	size_t n = 0;
	do {
		unsigned d = static_cast<unsigned>(value % base);
		digits[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
		value /= base;
	} while (value);
	size_t used = n + (negative ? 1 : 0);
	// Zero padding goes after the sign, space padding before it.
	if (negative && pad == '0')
		out.put('-');
	for (; used < width; used++)
		out.put(pad);
	if (negative && pad != '0')
		out.put('-');
	while (n)
		out.put(digits[--n]);
}

} // namespace detail

inline size_t formatV(char *buf, size_t cap, const char *fmt, va_list ap)
{
	FormatSink out(buf, cap);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			out.put(*p);
			continue;
		}
		p++;
		char pad = ' ';
		if (*p == '0') {
			pad = '0';
			p++;
		}
		size_t width = 0;
		while (*p >= '0' && *p <= '9')
			width = width * 10 + static_cast<size_t>(*p++ - '0');
		int precision = -1;
		if (p[0] == '.' && p[1] == '*') {
			precision = va_arg(ap, int);
			p += 2;
		}
		int longs = 0;
		bool sizeT = false;
		for (; *p == 'l'; p++)
			longs++;
		if (*p == 'z') {
			sizeT = true;
			p++;
		}

		switch (*p) {
		case '%':
			out.put('%');
			break;
		case 'c':
			out.put(static_cast<char>(va_arg(ap, int)));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			// The precision is checked first: a "%.*s" view need not be NUL-terminated, and
			// s[precision] may lie past its end.
			for (int i = 0; (precision < 0 || i < precision) && s[i]; i++)
				out.put(s[i]);
			break;
		}
		case 'd':
		case 'i': {
			int64_t v = sizeT ? static_cast<int64_t>(va_arg(ap, size_t))
				  : longs >= 2 ? va_arg(ap, long long)
				  : longs == 1 ? va_arg(ap, long)
					       : va_arg(ap, int);
			// 0 - v in unsigned arithmetic is well defined even for INT64_MIN.
			uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
			detail::formatUnsigned(out, magnitude, 10, width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = sizeT ? va_arg(ap, size_t)
				   : longs >= 2 ? va_arg(ap, unsigned long long)
				   : longs == 1 ? va_arg(ap, unsigned long)
						: va_arg(ap, unsigned int);
			detail::formatUnsigned(out, v, *p == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case '\0':
			return out.length(); // a lone '%' at the end
		default:
			// Unknown conversion: show it rather than guess at its argument.
			out.put('%');
			out.put(*p);
			break;
		}
	}
	return out.length();
}

__attribute__((format(printf, 3, 4))) inline size_t format(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = formatV(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

} // namespace spindle::guest

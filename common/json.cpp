#include "common/json.h"

#include <cmath>

#include "common/format.h"

#include <cstdio>

namespace spindle {

void appendJsonString(std::string &out, std::string_view text)
{
	out += '"';
	for (char c : text) {
		const auto u = static_cast<unsigned char>(c);
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		case '\b': out += "\\b"; break;
		case '\f': out += "\\f"; break;
		default:
			if (u < 0x20) {
				char buffer[8];
				std::snprintf(buffer, sizeof(buffer), "\\u%04x", u);
				out += buffer;
			} else {
				out += c;
			}
		}
	}
	out += '"';
}

std::string jsonString(std::string_view text)
{
	std::string out;
	appendJsonString(out, text);
	return out;
}

void JsonWriter::separate()
{
	// A value right after its key takes no comma; any other element does unless it is the first.
	if (afterKey_) {
		afterKey_ = false;
		return;
	}
	if (open_.empty())
		return;
	if (open_.back())
		out_ += ',';
	open_.back() = true;
}

JsonWriter &JsonWriter::open(char bracket)
{
	separate();
	out_ += bracket;
	open_.push_back(false);
	return *this;
}

JsonWriter &JsonWriter::close(char bracket)
{
	out_ += bracket;
	open_.pop_back();
	return *this;
}

JsonWriter &JsonWriter::key(std::string_view name)
{
	separate();
	appendJsonString(out_, name);
	out_ += ':';
	afterKey_ = true;
	return *this;
}

JsonWriter &JsonWriter::value(std::string_view text)
{
	separate();
	appendJsonString(out_, text);
	return *this;
}

JsonWriter &JsonWriter::raw(std::string_view text)
{
	separate();
	out_ += text;
	return *this;
}

JsonWriter &JsonWriter::number(double value, int decimals)
{
	if (!std::isfinite(value))
		return null();
	return raw(fixed(value, decimals));
}

} // namespace spindle

#include "common/json.h"

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

} // namespace spindle

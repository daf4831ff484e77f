#pragma once

// JSON for the hand-written writers (metrics, results, traces, bench outputs): no JSON library is
// available here. Names and texts can come from flags and guests, so every string goes through
// appendJsonString().

#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spindle {

// Appends text as a quoted JSON string, escaping quotes, backslashes and control characters.
void appendJsonString(std::string &out, std::string_view text);

// The same, returned.
std::string jsonString(std::string_view text);

// Appends compact JSON ("key":value, no spaces) to a string. It places the commas, the quotes
// and the colons; the caller keeps objects and arrays balanced and gives every value inside an
// object a key().
//
//   JsonWriter json(out);
//   json.beginObject().field("name", name).key("vcpus").beginArray();
//   ... json.value(n) ...
//   json.endArray().endObject();
class JsonWriter
{
public:
	explicit JsonWriter(std::string &out) : out_(out) {}

	JsonWriter &beginObject() { return open('{'); }
	JsonWriter &endObject() { return close('}'); }
	JsonWriter &beginArray() { return open('['); }
	JsonWriter &endArray() { return close(']'); }
	// Names the next value; only inside an object.
	JsonWriter &key(std::string_view name);

	JsonWriter &value(std::string_view text);
	template <std::integral T>
	JsonWriter &value(T number)
	{
		if constexpr (std::same_as<T, bool>) {
			return raw(number ? "true" : "false");
		} else {
			char digits[24];
			auto end = std::to_chars(digits, digits + sizeof(digits), number).ptr;
			return raw(std::string_view(digits, static_cast<size_t>(end - digits)));
		}
	}

	// A fixed-point number, or null when it is not finite (JSON has no NaN).
	JsonWriter &number(double value, int decimals);
	JsonWriter &null() { return raw("null"); }

	template <typename T>
	JsonWriter &field(std::string_view name, const T &v)
	{
		return key(name).value(v);
	}

private:
	JsonWriter &open(char bracket);
	JsonWriter &close(char bracket);
	JsonWriter &raw(std::string_view text);
	void separate();

	std::string &out_;
	// One entry per open object or array: whether it holds an element yet (a comma comes next).
	std::vector<bool> open_;
	bool afterKey_ = false;
};

} // namespace spindle

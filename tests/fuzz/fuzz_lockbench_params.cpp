// Fuzzes lockbench's parameter parser (guest-kernels/lockbench/params.h) and its duration reader.
//
// Input: one byte choosing the error buffer's size (1..256; the guest uses 192), then the args
// string (cut at the first NUL and at SPINDLE_BOOT_ARGS_MAX - 1 bytes, as the host writes it).
// Contract (guest-kernels/README.md, "lockbench"):
//   parseParams accepts exactly the strings whose every token is key=value with a known key and a
//     valid, in-range value; an accepted result holds, per key, the last value given (defaults for
//     keys not given): mode and lock from their tables, cs and think in 0..10ms, duration in
//     1ms..600s;
//   on success the error buffer is untouched; on failure it holds a non-empty, NUL-terminated,
//     message starting "lockbench: " (cut to the buffer), one line unless a token holds a newline,
//     written inside the buffer only;
//   parseDurationNs returns the exact value of a well-formed duration (or "0"), saturating only
//     within one unit of 2^64.

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "guest-kernels/lockbench/params.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/oracles.h"

using namespace spindle;
using namespace spindle::fuzz;

namespace {

std::string_view view(guest::StrView text)
{
	return { text.data, text.size };
}

// The documented reading of one duration value, in ns: nullopt when malformed.
std::optional<Wide> durationOf(std::string_view text)
{
	if (text == "0")
		return Wide{ 0 };
	auto reading = durationValue(text);
	if (!reading)
		return std::nullopt;
	return reading->ns;
}

void checkDuration(guest::StrView text)
{
	uint64_t ns = 0;
	const bool accepted = lockbench::parseDurationNs(text, ns);
	const auto exact = durationOf(view(text));
	FUZZ_REQUIRE(accepted == exact.has_value());
	if (!accepted)
		return;
	if (*exact <= kU64Max - lockbench::kNsPerS)
		FUZZ_REQUIRE(ns == *exact);
	else
		FUZZ_REQUIRE(ns == UINT64_MAX || ns == *exact);
}

std::optional<uint32_t> lookUp(const lockbench::NamedValue *table, size_t n, std::string_view name)
{
	for (size_t i = 0; i < n; ++i)
		if (name == table[i].name)
			return table[i].value;
	return std::nullopt;
}

// The reference parse: the expected parameters, or nullopt when some token is bad.
std::optional<lockbench::Params> expectedParams(std::string_view args)
{
	lockbench::Params params;
	size_t i = 0;
	while (i < args.size()) {
		if (args[i] == ' ') {
			++i;
			continue;
		}
		size_t end = std::min(args.find(' ', i), args.size());
		const std::string_view word = args.substr(i, end - i);
		i = end;
		const size_t equals = word.find('=');
		if (equals == std::string_view::npos)
			return std::nullopt;
		const std::string_view key = word.substr(0, equals), value = word.substr(equals + 1);
		if (key == "mode" || key == "lock") {
			auto found = key == "mode" ? lookUp(lockbench::kModes, std::size(lockbench::kModes), value)
						   : lookUp(lockbench::kLocks, std::size(lockbench::kLocks), value);
			if (!found)
				return std::nullopt;
			(key == "mode" ? params.mode : params.lock) = *found;
			continue;
		}
		const auto ns = durationOf(value);
		if (!ns)
			return std::nullopt;
		if (key == "cs" || key == "think") {
			if (*ns > 10 * lockbench::kNsPerMs)
				return std::nullopt;
			(key == "cs" ? params.csNs : params.thinkNs) = static_cast<uint64_t>(*ns);
		} else if (key == "duration") {
			if (*ns < lockbench::kNsPerMs || *ns > 600 * lockbench::kNsPerS)
				return std::nullopt;
			params.durationNs = static_cast<uint64_t>(*ns);
		} else {
			return std::nullopt;
		}
	}
	return params;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	const size_t cap = 1 + in.take<uint8_t>();
	std::string_view rest = in.restText();
	rest = rest.substr(0, std::min<size_t>(rest.find('\0'), SPINDLE_BOOT_ARGS_MAX - 1));
	const std::string args(rest);

	// Exactly cap bytes, so a write past the end is a heap overflow.
	std::unique_ptr<char[]> error(new char[cap]);
	std::memset(error.get(), 0, cap);
	lockbench::Params params;
	const bool accepted = lockbench::parseParams(args.c_str(), params, error.get(), cap);
	const auto expected = expectedParams(args);
	FUZZ_REQUIRE(accepted == expected.has_value());

	if (accepted) {
		FUZZ_REQUIRE(error[0] == '\0');
		FUZZ_REQUIRE(params.mode == expected->mode && params.lock == expected->lock);
		FUZZ_REQUIRE(params.csNs == expected->csNs && params.thinkNs == expected->thinkNs);
		FUZZ_REQUIRE(params.durationNs == expected->durationNs);
		FUZZ_REQUIRE(params.mode >= SPINDLE_MODE_LOCK && params.mode <= SPINDLE_MODE_CPU);
		FUZZ_REQUIRE(params.lock >= SPINDLE_LOCK_TICKET && params.lock <= SPINDLE_LOCK_KIND_MAX);
		FUZZ_REQUIRE(params.csNs <= lockbench::kMaxCsNs && params.thinkNs <= lockbench::kMaxThinkNs);
		FUZZ_REQUIRE(params.durationNs >= lockbench::kMinDurationNs &&
			     params.durationNs <= lockbench::kMaxDurationNs);
	} else {
		const size_t length = strnlen(error.get(), cap);
		FUZZ_REQUIRE(length < cap);
		FUZZ_REQUIRE(cap == 1 || length > 0);
		constexpr std::string_view kPrefix = "lockbench: ";
		FUZZ_REQUIRE(std::string_view(error.get(), length).substr(0, kPrefix.size()) ==
			     kPrefix.substr(0, std::min(length, kPrefix.size())));
		// One line, unless it quotes a token that holds a newline itself.
		if (args.find('\n') == std::string::npos)
			FUZZ_REQUIRE(std::memchr(error.get(), '\n', length) == nullptr);
	}

	// Every value, whatever its key, through the duration reader on its own.
	guest::ArgCursor cursor(args.c_str());
	guest::ArgToken token;
	while (cursor.next(token))
		checkDuration(token.value);
	return 0;
}

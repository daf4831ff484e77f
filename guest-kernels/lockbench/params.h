#pragma once

// lockbench's parameters, parsed from boot_info.args ("mode=lock lock=mcs cs=1us ...").
// Portable so the host tests cover it; the guest only adds the reporting.

#include <stddef.h>
#include <stdint.h>

#include "guest-kernels/abi/spindle_abi.h"
#include "guest-kernels/runtime/args.h"
#include "guest-kernels/runtime/format.h"

namespace spindle::lockbench {

using guest::StrView;

inline constexpr uint64_t kNsPerUs = 1000;
inline constexpr uint64_t kNsPerMs = 1000 * kNsPerUs;
inline constexpr uint64_t kNsPerS = 1000 * kNsPerMs;

inline constexpr uint64_t kMaxCsNs = 10 * kNsPerMs;
inline constexpr uint64_t kMaxThinkNs = 10 * kNsPerMs;
inline constexpr uint64_t kMinDurationNs = 1 * kNsPerMs;
inline constexpr uint64_t kMaxDurationNs = 600 * kNsPerS;
inline constexpr uint64_t kMaxIdleNs = 1 * kNsPerS;
inline constexpr uint64_t kMaxBusyNs = 10 * kNsPerS;

struct Params {
	uint32_t mode = SPINDLE_MODE_LOCK;   // enum spindle_bench_mode
	uint32_t lock = SPINDLE_LOCK_TICKET; // enum spindle_lock_kind
	uint64_t csNs = 500;
	uint64_t thinkNs = 2 * kNsPerUs;
	uint64_t durationNs = kNsPerS;
	// Sleepy work: each vCPU alternates busyNs of its mode's work with idleNs blocked in PV
	// WAITs (off the CPU). Both 0 (the default): always busy.
	uint64_t idleNs = 0;
	uint64_t busyNs = 0;

	bool sleepy() const { return idleNs != 0; }
};

struct NamedValue {
	const char *name;
	uint32_t value;
};

inline constexpr NamedValue kModes[] = {
	{ "lock", SPINDLE_MODE_LOCK },
	{ "barrier", SPINDLE_MODE_BARRIER },
	{ "cpu", SPINDLE_MODE_CPU },
};

inline constexpr NamedValue kLocks[] = {
	{ "ticket", SPINDLE_LOCK_TICKET },
	{ "tas", SPINDLE_LOCK_TAS },
	{ "ttas", SPINDLE_LOCK_TTAS },
	{ "mcs", SPINDLE_LOCK_MCS },
	{ "qspin", SPINDLE_LOCK_QSPIN },
	{ "pvticket", SPINDLE_LOCK_PVTICKET },
	{ "pvhalt", SPINDLE_LOCK_PVHALT },
};

template<size_t N>
inline const char *nameOf(const NamedValue (&table)[N], uint32_t value)
{
	for (const NamedValue &entry : table) {
		if (entry.value == value)
			return entry.name;
	}
	return "none";
}

inline const char *modeName(uint32_t mode) { return nameOf(kModes, mode); }
inline const char *lockName(uint32_t lock) { return nameOf(kLocks, lock); }

// A duration: digits, an optional fraction, and a unit ns, us, ms or s ("500ns", "1.5ms"); a
// bare "0" is accepted too. Fractions are kept to one nanosecond. A value too large for 64 bits
// saturates, so the caller's range check reports it. False if malformed.
inline bool parseDurationNs(StrView text, uint64_t &ns)
{
	if (text == "0") {
		ns = 0;
		return true;
	}
	size_t i = 0;
	uint64_t whole = 0;
	bool saturated = false;
	size_t wholeDigits = 0;
	for (; i < text.size && text.data[i] >= '0' && text.data[i] <= '9'; i++, wholeDigits++) {
		if (whole > UINT64_MAX / 10 - 1)
			saturated = true;
		else
			whole = whole * 10 + static_cast<uint64_t>(text.data[i] - '0');
	}
	if (wholeDigits == 0)
		return false;

	// Up to 9 fraction digits matter (1 ns in seconds); more are checked but dropped.
	uint64_t fraction = 0;
	uint64_t scale = 1;
	if (i < text.size && text.data[i] == '.') {
		i++;
		size_t fractionDigits = 0;
		for (; i < text.size && text.data[i] >= '0' && text.data[i] <= '9'; i++, fractionDigits++) {
			if (fractionDigits < 9) {
				fraction = fraction * 10 + static_cast<uint64_t>(text.data[i] - '0');
				scale *= 10;
			}
		}
		if (fractionDigits == 0)
			return false;
	}

	StrView unit{ text.data + i, text.size - i };
	uint64_t unitNs;
	if (unit == "ns")
		unitNs = 1;
	else if (unit == "us")
		unitNs = kNsPerUs;
	else if (unit == "ms")
		unitNs = kNsPerMs;
	else if (unit == "s")
		unitNs = kNsPerS;
	else
		return false;

	if (saturated || whole > (UINT64_MAX - unitNs) / unitNs) {
		ns = UINT64_MAX;
		return true;
	}
	// fraction < scale <= 1e9 and unitNs <= 1e9, so the product fits.
	ns = whole * unitNs + fraction * unitNs / scale;
	return true;
}

namespace detail {

template<size_t N>
inline bool lookUp(const NamedValue (&table)[N], StrView name, uint32_t &value)
{
	for (const NamedValue &entry : table) {
		if (name == entry.name) {
			value = entry.value;
			return true;
		}
	}
	return false;
}

struct DurationKey {
	const char *key;
	uint64_t Params::*field;
	uint64_t min;
	uint64_t max;
	const char *range; // for the message
};

inline constexpr DurationKey kDurationKeys[] = {
	{ "cs", &Params::csNs, 0, kMaxCsNs, "0 to 10ms" },
	{ "think", &Params::thinkNs, 0, kMaxThinkNs, "0 to 10ms" },
	{ "duration", &Params::durationNs, kMinDurationNs, kMaxDurationNs, "1ms to 600s" },
	{ "idle", &Params::idleNs, 0, kMaxIdleNs, "0 to 1s" },
	{ "busy", &Params::busyNs, 0, kMaxBusyNs, "0 to 10s" },
};

// The rules between keys, once all are read (a later key may change an earlier one's meaning).
inline bool checkCombination(const Params &params, char *error, size_t errorCap)
{
	if ((params.idleNs == 0) != (params.busyNs == 0)) {
		guest::format(error, errorCap,
			      "lockbench: idle and busy go together (both 0: always busy; both > 0: alternate)");
		return false;
	}
	if (params.sleepy() && params.mode == SPINDLE_MODE_BARRIER) {
		guest::format(error, errorCap,
			      "lockbench: idle and busy apply to mode=lock and mode=cpu (a blocked vCPU would stall every barrier round)");
		return false;
	}
	return true;
}

} // namespace detail

// Parses `args` into `params` (which keeps its defaults for keys not given; a later key wins).
// On failure returns false with a one-line reason in `error` (NUL-terminated, at most errorCap).
inline bool parseParams(const char *args, Params &params, char *error, size_t errorCap)
{
	using guest::format;
	guest::ArgCursor cursor(args);
	guest::ArgToken token;
	while (cursor.next(token)) {
		const StrView &t = token.text;
		const StrView &v = token.value;
		if (!token.hasValue) {
			format(error, errorCap, "lockbench: argument '%.*s' is not key=value", t.printLength(), t.data);
			return false;
		}
		if (token.key == "mode") {
			if (!detail::lookUp(kModes, v, params.mode)) {
				format(error, errorCap, "lockbench: unknown mode '%.*s' (expected lock, barrier, cpu)",
				       v.printLength(), v.data);
				return false;
			}
			continue;
		}
		if (token.key == "lock") {
			if (!detail::lookUp(kLocks, v, params.lock)) {
				format(error, errorCap,
				       "lockbench: unknown lock '%.*s' (expected ticket, tas, ttas, mcs, qspin, pvticket, pvhalt)",
				       v.printLength(), v.data);
				return false;
			}
			continue;
		}
		const detail::DurationKey *key = nullptr;
		for (const detail::DurationKey &candidate : detail::kDurationKeys) {
			if (token.key == candidate.key)
				key = &candidate;
		}
		if (!key) {
			format(error, errorCap,
			       "lockbench: unknown key '%.*s' (expected mode, lock, cs, think, duration, idle, busy)",
			       token.key.printLength(), token.key.data);
			return false;
		}
		uint64_t ns;
		if (!parseDurationNs(v, ns)) {
			format(error, errorCap,
			       "lockbench: bad duration '%.*s' (expected a number with unit ns, us, ms or s, e.g. 500ns or 1.5ms)",
			       t.printLength(), t.data);
			return false;
		}
		if (ns < key->min || ns > key->max) {
			format(error, errorCap, "lockbench: %.*s out of range (%s allowed)", t.printLength(), t.data,
			       key->range);
			return false;
		}
		params.*key->field = ns;
	}
	return detail::checkCombination(params, error, errorCap);
}

} // namespace spindle::lockbench

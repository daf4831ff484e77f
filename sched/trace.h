#pragma once

// --trace PATH: a JSON-lines timeline. One object per line:
//   {"t_ns":…,"ev":"spin","vm":0,"vcpu":1,"detail":"pv","value":2}          detection
//   {"t_ns":…,"ev":"deny","vm":0,"vcpu":2,"detail":"debt","value":…}        decision refused
//   {"t_ns":…,"ev":"boost","vm":0,"vcpu":2,"detail":"coboost","value":1000000,
//    "latency_ns":…,"ok":true}                                              actuation
// t_ns is CLOCK_MONOTONIC; latency_ns is from the decision to the end of the system call.

#include <cstdio>
#include <memory>
#include <string>

#include "common/result.h"
#include "sched/core.h"

namespace spindle::sched {

class TraceWriter
{
public:
	static Result<std::unique_ptr<TraceWriter>> open(const std::string &path);
	~TraceWriter();

	void record(const TraceRecord &r);
	void actuation(const Action &a, uint64_t doneNs, bool ok);
	void flush();
	// Formats one line (without the newline); exposed for tests.
	static std::string format(const TraceRecord &r, int64_t latencyNs = -1, int ok = -1);

private:
	explicit TraceWriter(FILE *file) : file_(file) {}
	FILE *file_;
};

} // namespace spindle::sched

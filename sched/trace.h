#pragma once

// --trace PATH: the scheduler's timeline, in one of two formats (--trace-format).
//
// jsonl (the default): JSON lines, written as events happen. One object per line:
//   {"t_ns":…,"ev":"spin","vm":0,"vcpu":1,"detail":"pv","value":2}          detection
//   {"t_ns":…,"ev":"deny","vm":0,"vcpu":2,"detail":"debt","value":…}        decision refused
//   {"t_ns":…,"ev":"boost","vm":0,"vcpu":2,"detail":"coboost","value":1000000,
//    "latency_ns":…,"ok":true}                                              actuation
//   {"t_ns":…,"ev":"quiet_tick","vm":0,"vcpu":0,"detail":"scheduler","value":10000000}
//                                                                           tick period changed
// t_ns is CLOCK_MONOTONIC; latency_ns is from the decision to the end of the system call.
//
// perfetto: the same records, kept in memory and written at flush() as Chrome trace-event JSON
// ({"traceEvents":[…]}), which ui.perfetto.dev and chrome://tracing open. See toPerfettoJson().

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "sched/core.h"

namespace spindle::sched {

// One trace record with its strings owned (a TraceRecord points into the core, which may change
// or free them later), and the actuation's outcome when it is one.
struct TraceEntry {
	uint64_t tNs = 0;
	std::string event;
	VcpuId who;
	std::string detail;
	uint64_t value = 0;
	int64_t latencyNs = -1; // actuations: decision to the end of the system call
	int ok = -1;            // actuations: 1 done, 0 failed
};

// What the timeline names a VM and how many vCPU tracks it gets.
struct TraceVm {
	std::string name;
	unsigned vcpus = 0;
};

// Converts records to Chrome/Perfetto trace-event JSON. Pure.
//
// Layout: a process per VM (pid = vm + 1, named after it), and per vCPU a thread track
// "vCPU i" (tid = pid * 10000 + vcpu * 10): its state as consecutive slices ("running",
// "runnable", "halted", "parked" from "state" records), spins and other vCPU events as instants.
// What overlaps the state in time gets a track of its own next to it, because Perfetto needs the
// slices of one track to nest: "vCPU i priority" (tid + 1: "boost <reason>" slices from boost to
// unboost as the host applied them, with the reason, the budget and what it followed; SCHED_IDLE
// from deprioritize to restore; denials, moves and nice changes as instants) and "vCPU i lock"
// (tid + 2: "lock held" while the hints say locks_held > 0, from "locks_held" records). A
// counter per VM counts its vCPUs in each state. VM-wide events (share guard, gang turns,
// adaptations) are process instants, adaptive's turns global ones.
// Timestamps are microseconds (to the nanosecond) from the first record; events are sorted by
// time, metadata first. A slice still open at the end closes at the last timestamp, marked
// "unfinished". droppedEntries (records that did not fit the writer's buffer) is reported in
// "otherData".
//
// Records the core does not write today but this format shows when they come (the lead's
// wiring): "state" (detail = the state's name, value = the CPU or kNoVcpu), "locks_held"
// (value = the hint's count, on change) and "kick" (who = the kicked vCPU, value = the kicker).
std::string toPerfettoJson(std::vector<TraceEntry> entries, const std::vector<TraceVm> &vms,
			   uint64_t droppedEntries = 0);

class TraceWriter
{
public:
	// At most this many records are kept for the perfetto format (about 100 bytes each); the
	// rest are counted, so a long run cannot take the host's memory.
	static constexpr size_t kMaxBufferedEntries = 1'000'000;
	// A jsonl trace stops growing here (a long-spin flood made it grow 1.2 MB/s); what is left
	// out is counted, and the last line says how many records were suppressed.
	static constexpr uint64_t kMaxJsonLinesBytes = 64ull << 20;

	static Result<std::unique_ptr<TraceWriter>> open(const std::string &path,
							 TraceFormat format = TraceFormat::JsonLines,
							 uint64_t maxJsonLinesBytes = kMaxJsonLinesBytes);
	~TraceWriter();

	// Names VM `vm` and its vCPU count for the perfetto tracks (ignored by jsonl).
	void describeVm(int vm, std::string name, unsigned vcpus);
	void record(const TraceRecord &r);
	void actuation(const Action &a, uint64_t doneNs, bool ok);
	// jsonl: flushes the stream. perfetto: (re)writes the whole file from the records so far,
	// so the file is complete after every flush.
	void flush();
	// Formats one line (without the newline); exposed for tests.
	static std::string format(const TraceRecord &r, int64_t latencyNs = -1, int ok = -1);
	// The record an actuation is written as (value: budget, CPU or nice by kind).
	static TraceRecord actuationRecord(const Action &a);

private:
	TraceWriter(FILE *file, TraceFormat format, uint64_t maxBytes) : file_(file), format_(format), maxBytes_(maxBytes) {}
	void keep(const TraceRecord &r, int64_t latencyNs, int ok);

	FILE *file_;
	TraceFormat format_;
	uint64_t maxBytes_;
	std::vector<TraceEntry> entries_;
	uint64_t dropped_ = 0;
	uint64_t written_ = 0; // jsonl bytes so far
	std::vector<TraceVm> vms_;
};

} // namespace spindle::sched

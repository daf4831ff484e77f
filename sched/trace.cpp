#include "sched/trace.h"

#include "common/json.h"

namespace spindle::sched {

Result<std::unique_ptr<TraceWriter>> TraceWriter::open(const std::string &path)
{
	FILE *file = std::fopen(path.c_str(), "we");
	if (!file)
		return Error::fromErrno("opening trace file " + path);
	return std::unique_ptr<TraceWriter>(new TraceWriter(file));
}

TraceWriter::~TraceWriter()
{
	std::fclose(file_);
}

std::string TraceWriter::format(const TraceRecord &r, int64_t latencyNs, int ok)
{
	std::string line = "{\"t_ns\":" + std::to_string(r.tNs) + ",\"ev\":";
	appendJsonString(line, r.event ? r.event : "");
	line += ",\"vm\":" + std::to_string(r.who.vm) + ",\"vcpu\":" + std::to_string(r.who.vcpu) + ",\"detail\":";
	appendJsonString(line, r.detail ? r.detail : "");
	line += ",\"value\":" + std::to_string(r.value);
	if (latencyNs >= 0)
		line += ",\"latency_ns\":" + std::to_string(latencyNs);
	if (ok >= 0)
		line += ok ? ",\"ok\":true" : ",\"ok\":false";
	line += '}';
	return line;
}

void TraceWriter::record(const TraceRecord &r)
{
	// Detections, denials, turns, adaptations. Actions have no record here: actuation() writes
	// them, with their latency.
	std::string line = format(r);
	line += '\n';
	std::fwrite(line.data(), 1, line.size(), file_);
}

void TraceWriter::actuation(const Action &a, uint64_t doneNs, bool ok)
{
	TraceRecord r{ a.issuedNs, toString(a.kind), a.who, a.kind == ActionKind::Boost ? toString(a.reason) : "",
		       a.kind == ActionKind::Boost ? a.budgetNs
		       : a.kind == ActionKind::Move ? static_cast<uint64_t>(a.cpu)
						     : static_cast<uint64_t>(a.nice) };
	std::string line = format(r, static_cast<int64_t>(doneNs - a.issuedNs), ok ? 1 : 0);
	line += '\n';
	std::fwrite(line.data(), 1, line.size(), file_);
}

void TraceWriter::flush()
{
	std::fflush(file_);
}

} // namespace spindle::sched

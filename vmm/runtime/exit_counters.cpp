#include "vmm/runtime/exit_counters.h"

namespace spindle {

const char *exitKindName(ExitKind kind)
{
	switch (kind) {
	case ExitKind::Io: return "io";
	case ExitKind::Mmio: return "mmio";
	case ExitKind::Hlt: return "hlt";
	case ExitKind::Shutdown: return "shutdown";
	case ExitKind::FailEntry: return "fail_entry";
	case ExitKind::InternalError: return "internal_error";
	case ExitKind::Interrupted: return "interrupted";
	case ExitKind::Unclaimed: return "unclaimed";
	case ExitKind::PvRecord: return "pv_records";
	case ExitKind::PvMalformed: return "pv_malformed";
	case ExitKind::Other: return "other";
	case ExitKind::Count: break;
	}
	return "?";
}

ExitCounts ExitCounters::snapshot() const
{
	ExitCounts snapshot;
	snapshot.runs = runs.load(std::memory_order_relaxed);
	for (unsigned i = 0; i < static_cast<unsigned>(ExitKind::Count); ++i)
		snapshot.counts[i] = counts[i].load(std::memory_order_relaxed);
	return snapshot;
}

void writeJson(JsonWriter &json, const ExitCounts &counts)
{
	json.beginObject().field("runs", counts.runs);
	for (unsigned i = 0; i < static_cast<unsigned>(ExitKind::Count); ++i)
		json.field(exitKindName(static_cast<ExitKind>(i)), counts.counts[i]);
	json.endObject();
}

} // namespace spindle

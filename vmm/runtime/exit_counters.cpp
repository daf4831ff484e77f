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

std::string ExitCounters::toJson() const
{
	std::string json = "{\"runs\": " + std::to_string(runs.load(std::memory_order_relaxed));
	for (unsigned i = 0; i < static_cast<unsigned>(ExitKind::Count); ++i) {
		json += ", \"";
		json += exitKindName(static_cast<ExitKind>(i));
		json += "\": " + std::to_string(counts[i].load(std::memory_order_relaxed));
	}
	return json + "}";
}

} // namespace spindle

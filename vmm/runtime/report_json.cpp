#include "vmm/runtime/report_json.h"

#include "common/json.h"

namespace spindle {

namespace {

void writeStatus(JsonWriter &json, int status, const std::string &failure)
{
	json.field("status", status).key("failure");
	if (failure.empty())
		json.null();
	else
		json.value(failure);
}

void writeVmMetrics(JsonWriter &json, const VmReport &vm)
{
	json.beginObject().field("name", vm.name).field("cpus", vm.cpus);
	json.field("guest_mode", guestModeName(vm.mode)).field("guest_mode_reason", vm.modeReason);
	json.field("stop_reason", stopReasonName(vm.stopReason)).key("exit_code");
	if (vm.exitCode)
		json.value(*vm.exitCode);
	else
		json.null();
	json.field("pv_malformed", vm.pvMalformed).field("long_spins", vm.results.longSpins);
	json.key("vcpus").beginArray();
	for (size_t v = 0; v < vm.vcpus.size(); ++v) {
		json.beginObject().field("vcpu", v).key("exits");
		writeJson(json, vm.vcpus[v].exits);
		const ParkingCounters &p = vm.vcpus[v].parking;
		json.key("parking").beginObject().field("waits", p.waits).field("waits_returned_at_once", p.waitsReturnedAtOnce);
		json.field("wakes_by_kick", p.wakesByKick).field("wait_timeouts", p.waitTimeouts).field("wakes_by_stop", p.wakesByStop);
		json.field("parked_us", p.parkedNs / 1000).field("kicks", p.kicks).field("kicks_dropped", p.allKicksDropped());
		json.endObject();
		// The hint slot as the guest left it: a consistent guest holds no lock at the end.
		if (const auto &hint = vm.vcpus[v].hint) {
			json.key("hint_at_exit").beginObject().field("seq", hint->seq).field("locks_held", hint->locksHeld);
			json.key("waiting_on");
			if (hint->waitingOn == SPINDLE_VCPU_NONE)
				json.null();
			else
				json.value(hint->waitingOn);
			json.endObject();
		}
		json.endObject();
	}
	json.endArray().endObject();
}

} // namespace

const char *stopReasonName(StopReason reason)
{
	switch (reason) {
	case StopReason::None: return "running";
	case StopReason::GuestExit: return "guest_exit";
	case StopReason::AllHalted: return "all_halted";
	case StopReason::Fatal: return "fatal";
	case StopReason::Requested: return "stopped";
	}
	return "?";
}

std::string metricsJson(const SessionReport *report, int status, const std::string &failure)
{
	std::string out;
	JsonWriter json(out);
	json.beginObject();
	writeStatus(json, status, failure);
	json.key("vms").beginArray();
	if (report)
		for (const VmReport &vm : report->vms)
			writeVmMetrics(json, vm);
	json.endArray();
	if (report) {
		json.key("scheduler");
		sched::writeJson(json, report->scheduler);
	}
	json.endObject();
	return out + "\n";
}

std::string resultsJson(const SessionReport *report, int status, const std::string &failure)
{
	std::string out;
	JsonWriter json(out);
	json.beginObject();
	writeStatus(json, status, failure);
	json.key("vms").beginArray();
	if (report)
		for (const VmReport &vm : report->vms)
			writeJson(json, vm.name, vm.results);
	json.endArray().endObject();
	return out + "\n";
}

} // namespace spindle

#include "sched/metrics.h"

#include <string>

namespace spindle::sched {

const char *toString(SpinSource source)
{
	switch (source) {
	case SpinSource::Ple: return "ple";
	case SpinSource::Pattern: return "pattern";
	case SpinSource::Pv: return "pv";
	case SpinSource::Hint: return "hint";
	case SpinSource::Sampled: return "sampled";
	}
	return "?";
}

VcpuCounters &VcpuCounters::operator+=(const VcpuCounters &other)
{
	for (unsigned i = 0; i < kSpinSources; ++i)
		spins[i] += other.spins[i];
#define SPINDLE_COUNTER_ADD(member, key, divisor) member += other.member;
	SPINDLE_VCPU_COUNTERS(SPINDLE_COUNTER_ADD)
#undef SPINDLE_COUNTER_ADD
	return *this;
}

#define SPINDLE_COUNTER_FIELD(member, key, divisor) json.field(key, counters.member / (divisor));

void writeJson(JsonWriter &json, const VcpuCounters &counters)
{
	json.beginObject();
	for (unsigned i = 0; i < kSpinSources; ++i)
		json.field(std::string("spins_") + toString(static_cast<SpinSource>(i)), counters.spins[i]);
	SPINDLE_VCPU_COUNTERS(SPINDLE_COUNTER_FIELD)
	json.endObject();
}

namespace {

void writeFields(JsonWriter &json, const VmCounters &counters)
{
	SPINDLE_VM_COUNTERS(SPINDLE_COUNTER_FIELD)
}

void writeFields(JsonWriter &json, const HostBoostStats &counters)
{
	SPINDLE_HOST_BOOST_COUNTERS(SPINDLE_COUNTER_FIELD)
}

#undef SPINDLE_COUNTER_FIELD

void writeFields(JsonWriter &json, const CoreMetrics &metrics)
{
	json.field("policy", policyName(metrics.policy));
	json.key("vms").beginArray();
	for (const VmMetrics &vm : metrics.vms) {
		json.beginObject().field("name", vm.name);
		json.key("totals");
		writeJson(json, vm.totals);
		writeFields(json, vm.counters);
		json.key("vcpus").beginArray();
		for (const VcpuCounters &vcpu : vm.vcpus)
			writeJson(json, vcpu);
		json.endArray().endObject();
	}
	json.endArray();
	json.field("extension_end_late_max_us", metrics.extensionEndLateMaxNs / kNsAsUs);
	json.field("extension_end_late_mean_us", metrics.extensionEndLateMeanNs / kNsAsUs);
}

} // namespace

void writeJson(JsonWriter &json, const CoreMetrics &metrics)
{
	json.beginObject();
	writeFields(json, metrics);
	json.endObject();
}

VcpuCounters totalOverVms(const CoreMetrics &metrics)
{
	VcpuCounters sum;
	for (const VmMetrics &vm : metrics.vms)
		sum += vm.totals;
	return sum;
}

uint64_t spinWaits(const VcpuCounters &counters)
{
	uint64_t sum = 0;
	for (uint64_t n : counters.spins)
		sum += n;
	return sum;
}

void writeJson(JsonWriter &json, const SchedulerMetrics &metrics)
{
	json.beginObject();
	writeFields(json, metrics.core);
	json.field("event_loop", metrics.host.eventLoop);
	json.field("ple_detector", metrics.host.pleDetector);
	json.field("fifo_fallback", metrics.host.fifoFallback);
	json.field("thread_states", metrics.host.threadStates);
	json.field("switch_events", metrics.host.switchEvents);
	json.field("thread_state_resyncs", metrics.host.threadStateResyncs);
	json.field("thread_state_fixes", metrics.host.threadStateFixes);
	json.field("ticks", metrics.host.ticks);
	json.field("quiet_ticks", metrics.host.quietTicks);
	json.field("turn_ticks", metrics.host.turnTicks);
	json.field("backed_off_ticks", metrics.host.backedOffTicks);
	json.field("vcpu_threads_attached", metrics.host.threadsAttached);
	json.field("samplers_stopped_by_pv_reports", metrics.host.samplersStopped);
	json.field("actuation_errors", metrics.host.actuationErrors);
	writeFields(json, metrics.host.boosts);
	json.endObject();
}

} // namespace spindle::sched

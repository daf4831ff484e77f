#include "common/format.h"
#include "common/json.h"
#include "vmm/runtime/guest_results.h"

#include <cstdio>

namespace spindle {

bool GuestResults::hasAny() const
{
	if (vm)
		return true;
	for (const auto &v : vcpus)
		if (v)
			return true;
	return false;
}

const char *benchModeName(uint32_t mode)
{
	switch (mode) {
	case SPINDLE_MODE_LOCK: return "lock";
	case SPINDLE_MODE_BARRIER: return "barrier";
	case SPINDLE_MODE_CPU: return "cpu";
	default: return "unknown";
	}
}

const char *lockKindName(uint32_t lock)
{
	switch (lock) {
	case SPINDLE_LOCK_NONE: return "none";
	case SPINDLE_LOCK_TICKET: return "ticket";
	case SPINDLE_LOCK_TAS: return "tas";
	case SPINDLE_LOCK_TTAS: return "ttas";
	case SPINDLE_LOCK_MCS: return "mcs";
	case SPINDLE_LOCK_QSPIN: return "qspin";
	case SPINDLE_LOCK_PVTICKET: return "pvticket";
	case SPINDLE_LOCK_PVHALT: return "pvhalt";
	default: return "unknown";
	}
}

namespace {
uint64_t bucketUpperNs(unsigned bucket)
{
	return bucket >= 63 ? UINT64_MAX : (2ull << bucket) - 1;
}
} // namespace

uint64_t histogramPercentileNs(const uint64_t (&hist)[SPINDLE_LATENCY_BUCKETS], double percentile)
{
	uint64_t total = 0;
	for (uint64_t count : hist)
		total += count;
	if (total == 0)
		return 0;
	// The rank of the sample at this percentile, 1-based.
	uint64_t rank = static_cast<uint64_t>(percentile / 100.0 * static_cast<double>(total));
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < SPINDLE_LATENCY_BUCKETS; ++i) {
		seen += hist[i];
		if (seen >= rank)
			return bucketUpperNs(i);
	}
	return bucketUpperNs(SPINDLE_LATENCY_BUCKETS - 1);
}

uint64_t histogramMaxNs(const uint64_t (&hist)[SPINDLE_LATENCY_BUCKETS])
{
	for (unsigned i = SPINDLE_LATENCY_BUCKETS; i-- > 0;)
		if (hist[i])
			return bucketUpperNs(i);
	return 0;
}

Status checkGuestResults(const GuestResults &results)
{
	if (!results.hasAny())
		return {};
	if (!results.vm)
		return Error::invalid("the guest sent per-vCPU results but no VM summary");
	uint64_t sum = 0;
	for (size_t i = 0; i < results.vcpus.size(); ++i) {
		if (!results.vcpus[i])
			return Error::invalid("vCPU " + std::to_string(i) + " sent no results");
		if (results.vcpus[i]->mode != results.vm->mode)
			return Error::invalid("vCPU " + std::to_string(i) + " reports a different mode than the VM");
		if (results.vcpus[i]->ops == 0)
			return Error::invalid("vCPU " + std::to_string(i) + " made no progress (0 operations)");
		if (results.vcpus[i]->ops > UINT64_MAX - sum)
			return Error::invalid("operation counts overflow");
		sum += results.vcpus[i]->ops;
	}
	if (sum != results.vm->total_ops)
		return Error::invalid("per-vCPU operations add up to " + std::to_string(sum) + " but the VM reports " +
				      std::to_string(results.vm->total_ops));
	if (results.vm->mode == SPINDLE_MODE_LOCK && results.vm->shared_counter != sum)
		return Error::invalid("mutual exclusion violated: the critical-section counter is " +
				      std::to_string(results.vm->shared_counter) + " after " + std::to_string(sum) +
				      " acquisitions");
	return {};
}

double opsPerSecond(const GuestResults &results)
{
	if (!results.vm || results.vm->duration_ns == 0)
		return 0.0;
	return static_cast<double>(results.vm->total_ops) * 1e9 / static_cast<double>(results.vm->duration_ns);
}

namespace {

} // namespace

void writeJson(JsonWriter &json, const std::string &vmName, const GuestResults &results)
{
	json.beginObject().field("vm", vmName);
	if (results.vm) {
		const auto &vm = *results.vm;
		json.field("mode", benchModeName(vm.mode)).field("lock", lockKindName(vm.lock));
		json.field("duration_ns", vm.duration_ns).field("total_ops", vm.total_ops);
		json.key("ops_per_sec").number(opsPerSecond(results), 1);
		json.field("shared_counter", vm.shared_counter).field("cs_ns", vm.cs_ns).field("think_ns", vm.think_ns);
	}
	json.field("long_spins_received", results.longSpins);
	json.field("checks_ok", checkGuestResults(results).ok());
	json.key("vcpus").beginArray();
	for (size_t i = 0; i < results.vcpus.size(); ++i) {
		json.beginObject().field("vcpu", i);
		if (const auto &v = results.vcpus[i]) {
			json.field("ops", v->ops).field("spin_iters", v->spin_iters).field("long_spins", v->long_spins);
			json.key("latency_ns").beginObject();
			json.field("p50", histogramPercentileNs(v->latency_ns_hist, 50));
			json.field("p99", histogramPercentileNs(v->latency_ns_hist, 99));
			json.field("max", histogramMaxNs(v->latency_ns_hist));
			json.key("log2_hist").beginArray();
			for (unsigned b = 0; b < SPINDLE_LATENCY_BUCKETS; ++b)
				json.value(v->latency_ns_hist[b]);
			json.endArray().endObject();
		}
		json.endObject();
	}
	json.endArray().key("guest_errors").beginArray();
	for (const std::string &text : results.guestErrors)
		json.value(text);
	json.endArray().endObject();
}

std::string guestResultsJson(const std::string &vmName, const GuestResults &results)
{
	std::string out;
	JsonWriter json(out);
	writeJson(json, vmName, results);
	return out;
}

std::string guestResultsTable(const std::string &vmName, const GuestResults &results)
{
	if (!results.vm)
		return {};
	const auto &vm = *results.vm;
	std::string out;
	char line[256];
	snprintf(line, sizeof(line), "%s: %s mode, lock %s, cs %llu ns, think %llu ns, %.3f s: %.0f ops/s\n",
		 vmName.c_str(), benchModeName(vm.mode), lockKindName(vm.lock),
		 static_cast<unsigned long long>(vm.cs_ns), static_cast<unsigned long long>(vm.think_ns),
		 static_cast<double>(vm.duration_ns) / 1e9, opsPerSecond(results));
	out += line;
	snprintf(line, sizeof(line), "  %5s %12s %14s %10s %10s %10s %10s\n", "vcpu", "ops", "spin iters", "long spins",
		 "p50 ns", "p99 ns", "max ns");
	out += line;
	for (size_t i = 0; i < results.vcpus.size(); ++i) {
		const auto &v = results.vcpus[i];
		if (!v)
			continue;
		snprintf(line, sizeof(line), "  %5zu %12llu %14llu %10llu %10llu %10llu %10llu\n", i,
			 static_cast<unsigned long long>(v->ops), static_cast<unsigned long long>(v->spin_iters),
			 static_cast<unsigned long long>(v->long_spins),
			 static_cast<unsigned long long>(histogramPercentileNs(v->latency_ns_hist, 50)),
			 static_cast<unsigned long long>(histogramPercentileNs(v->latency_ns_hist, 99)),
			 static_cast<unsigned long long>(histogramMaxNs(v->latency_ns_hist)));
		out += line;
	}
	auto check = checkGuestResults(results);
	snprintf(line, sizeof(line), "  total %llu ops, mutual exclusion %s\n",
		 static_cast<unsigned long long>(vm.total_ops), check ? "ok" : "VIOLATED/INCOMPLETE");
	out += line;
	return out;
}

} // namespace spindle

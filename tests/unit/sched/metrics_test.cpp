// The typed metrics and their JSON: the keys and their order are a contract (the KVM tests and
// the bench harness parse them), and the JSON writer they go through.

#include <gtest/gtest.h>

#include <string>

#include "common/json.h"
#include "harness.h"
#include "sched/scheduler.h"

namespace spindle::sched::test {
namespace {

TEST(JsonWriter, PlacesCommasBetweenFieldsAndElementsOnly)
{
	std::string out;
	JsonWriter json(out);

	json.beginObject().field("a", uint64_t{ 1 }).key("list").beginArray();
	json.value(uint64_t{ 2 }).value(int64_t{ -3 }).beginObject().endObject().beginArray().endArray();
	json.endArray().field("b", true).field("c", false).endObject();

	EXPECT_EQ(out, "{\"a\":1,\"list\":[2,-3,{},[]],\"b\":true,\"c\":false}");
}

TEST(JsonWriter, EscapesKeysAndStrings)
{
	std::string out;
	JsonWriter json(out);

	json.beginObject().field("k\"ey", "va\\l\n").field("view", std::string_view("x")).endObject();

	EXPECT_EQ(out, "{\"k\\\"ey\":\"va\\\\l\\n\",\"view\":\"x\"}");
}

TEST(JsonWriter, AppendsToWhatIsThere)
{
	std::string out = "prefix ";
	JsonWriter json(out);

	json.beginArray().value(uint64_t{ 18446744073709551615ull }).endArray();

	EXPECT_EQ(out, "prefix [18446744073709551615]");
}

TEST(SchedMetrics, CoreJsonKeysAndTheirOrderAreTheContract)
{
	SchedulerOptions o = withPolicy(PolicyKind::Express);
	Harness h(o, { 0 });
	int vm = h.core.addVm("a", 1, nullptr);
	h.core.spinDetected({ vm, 0 }, SpinSource::Pv);
	h.core.cpuTime({ vm, 0 }, 2500);

	std::string json;
	h.core.writeMetricsJson(json);

	const std::string counters =
		"{\"spins_ple\":0,\"spins_pattern\":0,\"spins_pv\":1,\"spins_hint\":0,\"spins_sampled\":0,\"boosts\":0,"
		"\"boosted_us\":0,\"debited_us\":0,\"overrun_us\":0,\"repaid_us\":0,\"denied_bounds\":0,"
		"\"denied_debt\":0,\"denied_share\":0,\"pv_accepted\":0,\"pv_dropped\":0,"
		"\"hints_invalid\":0,\"extensions_granted\":0,\"extensions_ended_early\":0,"
		"\"express_runs\":0,\"yields\":0,\"moves\":0,\"moves_home\":0,\"cpu_us\":2,\"samples\":0}";
	EXPECT_EQ(json, "{\"policy\":\"express\",\"vms\":[{\"name\":\"a\",\"totals\":" + counters +
				",\"coboosts\":0,\"coboosts_in_flight\":0,\"gang_turns\":0,"
				"\"gang_hole_cpu_us\":0,\"share_holds\":0,\"share_held_us\":0,\"vcpus\":[" +
				counters +
				"]}],\"extension_end_late_max_us\":0,\"extension_end_late_mean_us\":0}");
}

TEST(SchedMetrics, TotalsAreTheSumsOverTheVcpus)
{
	Harness h(withPolicy(PolicyKind::Cfs));
	int vm = h.core.addVm("a", 2, nullptr);
	h.core.spinDetected({ vm, 0 }, SpinSource::Ple);
	h.core.spinDetected({ vm, 1 }, SpinSource::Ple);
	h.core.cpuTime({ vm, 0 }, 3 * kUs);
	h.core.cpuTime({ vm, 1 }, 4 * kUs);

	CoreMetrics m = h.core.metrics();

	ASSERT_EQ(m.vms.size(), 1u);
	ASSERT_EQ(m.vms[0].vcpus.size(), 2u);
	EXPECT_EQ(m.vms[0].totals.spins[static_cast<unsigned>(SpinSource::Ple)], 2u);
	EXPECT_EQ(m.vms[0].totals.cpuNs, 7 * kUs);
	EXPECT_EQ(m.vms[0].vcpus[1].cpuNs, 4 * kUs);
}

TEST(SchedMetrics, SchedulerJsonIsOneObjectWithTheHostFieldsAfterTheCoresFields)
{
	SchedulerOptions o;
	o.detectPle = false;
	o.detectPattern = false; // it reads the same PAUSE counters
	o.threadStates = SchedulerOptions::ThreadStateSource::Proc; // the same on every host
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	ASSERT_TRUE((*s)->addVm("a", 1, nullptr).ok());

	std::string json;
	(*s)->writeMetricsJson(json);
	SchedulerMetrics m = (*s)->metrics();

	std::string core;
	JsonWriter writer(core);
	writeJson(writer, m.core);
	ASSERT_FALSE(core.empty());
	core.pop_back(); // the expected object is the core's, extended
	EXPECT_EQ(json, core +
				",\"event_loop\":\"none\",\"ple_detector\":false,\"fifo_fallback\":false,"
				"\"thread_states\":\"proc\",\"switch_events\":0,\"thread_state_resyncs\":0,\"thread_state_fixes\":0,\"ticks\":0,\"quiet_ticks\":0,\"turn_ticks\":0,\"backed_off_ticks\":0,\"vcpu_threads_attached\":0,\"samplers_stopped_by_pv_reports\":0,"
				"\"actuation_errors\":0,\"boosts_applied\":0,\"boost_applied_us\":0,"
				"\"boost_overrun_max_us\":0,\"boosts_ended_by_alarm\":0,\"boost_alarm_late_max_us\":0,\"actuation_latency_max_us\":0,"
				"\"scheduler_realtime_switches\":0,\"restores\":0,\"restore_mismatches\":0}");
	EXPECT_EQ(m.host.eventLoop, "none");
	EXPECT_EQ(m.core.vms.size(), 1u);
}


TEST(SchedMetrics, TotalOverVmsSumsEveryVmsTotals)
{
	CoreMetrics metrics;
	metrics.vms.resize(2);
	metrics.vms[0].totals.spins[static_cast<unsigned>(SpinSource::Ple)] = 3;
	metrics.vms[0].totals.spins[static_cast<unsigned>(SpinSource::Pattern)] = 1;
	metrics.vms[0].totals.boosts = 2;
	metrics.vms[0].totals.boostedNs = 150 * kUs;
	metrics.vms[1].totals.spins[static_cast<unsigned>(SpinSource::Ple)] = 10;
	metrics.vms[1].totals.spins[static_cast<unsigned>(SpinSource::Pv)] = 2;
	metrics.vms[1].totals.spins[static_cast<unsigned>(SpinSource::Hint)] = 1;
	metrics.vms[1].totals.boosts = 5;
	metrics.vms[1].totals.boostedNs = 1000 * kUs;
	metrics.vms[1].vcpus.resize(1);
	metrics.vms[1].vcpus[0].boosts = 99; // per-vCPU counters are already in the totals

	VcpuCounters total = totalOverVms(metrics);

	EXPECT_EQ(spinWaits(total), 17u);
	EXPECT_EQ(total.boosts, 7u);
	EXPECT_EQ(total.boostedNs, 1150 * kUs);
}

} // namespace
} // namespace spindle::sched::test

// The perfetto trace format: Chrome trace-event JSON from the scheduler's trace records, and the
// writer that produces it at flush.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "harness.h"
#include "sched/trace.h"
#include "tests/support/json_check.h"

namespace spindle::sched {
namespace {

constexpr uint64_t kT0 = 5'000'000'000;
constexpr uint64_t kUs = 1'000;

TraceEntry entry(uint64_t t, const char *event, VcpuId who, const char *detail, uint64_t value)
{
	return TraceEntry{ t, event, who, detail, value };
}

TraceEntry applied(uint64_t t, const char *event, VcpuId who, const char *detail, uint64_t value, int64_t latency)
{
	return TraceEntry{ t, event, who, detail, value, latency, 1 };
}

// Every event object's text, in file order ({"ph":... up to its closing brace).
std::vector<std::string> eventsOf(const std::string &json)
{
	std::vector<std::string> out;
	std::regex event(R"(\{"ph":"[XiCM]"[^\n]*?\}\}(?=,\n|\]))");
	for (auto it = std::sregex_iterator(json.begin(), json.end(), event); it != std::sregex_iterator(); ++it)
		out.push_back(it->str());
	return out;
}

double field(const std::string &event, const char *name)
{
	std::smatch m;
	std::regex re(std::string("\"") + name + R"(":([0-9.]+))");
	if (!std::regex_search(event, m, re))
		return -1;
	return std::stod(m[1]);
}

std::vector<std::string> withName(const std::string &json, const std::string &name)
{
	std::vector<std::string> out;
	for (const std::string &e : eventsOf(json))
		if (e.find("\"name\":\"" + name + "\"") != std::string::npos)
			out.push_back(e);
	return out;
}

// A scenario with something of every kind: two VMs, states, hints, a spin and the co-boost it
// caused, a denial, a move, a nice change, VM-wide and global events, a record of a kind the
// converter does not know, and a name that needs escaping.
std::vector<TraceEntry> scenario()
{
	return {
		entry(kT0, "state", { 0, 0 }, "running", 0),
		entry(kT0, "state", { 0, 1 }, "runnable", 0),
		entry(kT0 + 10 * kUs, "locks_held", { 0, 0 }, "hint", 1),
		entry(kT0 + 20 * kUs, "spin", { 0, 1 }, "pv", 0),
		applied(kT0 + 21 * kUs, "boost", { 0, 0 }, "coboost", 1'000'000, 30'000),
		entry(kT0 + 25 * kUs, "deny", { 0, 1 }, "debt", 0),
		applied(kT0 + 26 * kUs, "move", { 0, 1 }, "", 1, 5'000),
		entry(kT0 + 40 * kUs, "locks_held", { 0, 0 }, "hint", 0),
		entry(kT0 + 50 * kUs, "state", { 0, 1 }, "parked", SPINDLE_VCPU_NONE),
		entry(kT0 + 55 * kUs, "kick", { 0, 1 }, "", 0),
		entry(kT0 + 60 * kUs, "state", { 0, 1 }, "running", 1),
		applied(kT0 + 70 * kUs, "unboost", { 0, 0 }, "", 0, 10'000),
		applied(kT0 + 75 * kUs, "set_nice", { 0, 1 }, "", 5, 1'000),
		entry(kT0 + 80 * kUs, "share_hold", { 1, 0 }, "vm\"1", 0),
		entry(kT0 + 90 * kUs, "turns_start", { 0, 0 }, "adaptive", 0),
		entry(kT0 + 95 * kUs, "something_new", { 1, 1 }, "x", 7),
		applied(kT0 + 96 * kUs, "deprioritize", { 1, 1 }, "", 0, 2'000),
	};
}

const std::vector<TraceVm> kVms = { { "vm0", 2 }, { "vm\"1", 3 } };

TEST(PerfettoTrace, IsValidJson)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	EXPECT_EQ(spindle::test::JsonChecker::problem(json), "") << json;
	EXPECT_EQ(json.rfind("{\"traceEvents\":[", 0), 0u);
}

TEST(PerfettoTrace, AnEmptyTraceIsValidToo)
{
	std::string json = toPerfettoJson({}, kVms, 3);

	EXPECT_EQ(spindle::test::JsonChecker::problem(json), "") << json;
	EXPECT_NE(json.find("\"dropped_records\":3"), std::string::npos);
}

TEST(PerfettoTrace, MetadataComesFirstThenEventsOrderedByTime)
{
	// Recorded out of order on purpose: actuations arrive after the records of their batch.
	std::vector<TraceEntry> entries = scenario();
	std::reverse(entries.begin(), entries.end());

	std::vector<std::string> events = eventsOf(toPerfettoJson(entries, kVms));

	ASSERT_FALSE(events.empty());
	bool metadataOver = false;
	double last = 0;
	for (const std::string &e : events) {
		bool metadata = e.rfind("{\"ph\":\"M\"", 0) == 0;
		EXPECT_FALSE(metadata && metadataOver) << "metadata after events: " << e;
		if (metadata)
			continue;
		metadataOver = true;
		double ts = field(e, "ts");
		EXPECT_GE(ts, last) << e;
		last = ts;
	}
	EXPECT_DOUBLE_EQ(field(withName(toPerfettoJson(entries, kVms), "running").front(), "ts"), 0.0)
		<< "time starts at the first record";
}

TEST(PerfettoTrace, OneStateTrackPerVcpuEvenWithoutEvents)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::vector<std::string> names = withName(json, "thread_name");
	std::map<std::string, int> tracks;
	for (const std::string &e : names) {
		std::smatch m;
		ASSERT_TRUE(std::regex_search(e, m, std::regex(R"re("pid":(\d+),"tid":(\d+),"args":\{"name":"([^"]*)")re")));
		tracks[m[1].str() + "/" + m[3].str()]++;
		EXPECT_EQ(std::stoll(m[2]) / 10000, std::stoll(m[1])) << "tids are per VM: " << e;
	}
	for (const char *track : { "1/vCPU 0", "1/vCPU 1", "2/vCPU 0", "2/vCPU 1", "2/vCPU 2" })
		EXPECT_EQ(tracks[track], 1) << track;
	EXPECT_EQ(withName(json, "process_name").size(), 2u);
	EXPECT_NE(json.find("\"name\":\"vm\\\"1\""), std::string::npos) << "names are escaped";
}

TEST(PerfettoTrace, StatesAreConsecutiveSlices)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::vector<std::string> parked = withName(json, "parked");
	ASSERT_EQ(parked.size(), 1u);
	EXPECT_DOUBLE_EQ(field(parked[0], "ts"), 50.0);
	EXPECT_DOUBLE_EQ(field(parked[0], "dur"), 10.0);
	EXPECT_NE(parked[0].find("\"tid\":10010"), std::string::npos);
	// The VM's counter follows the states.
	std::vector<std::string> counters = withName(json, "vCPUs");
	ASSERT_FALSE(counters.empty());
	EXPECT_NE(counters.back().find("\"running\":2"), std::string::npos) << counters.back();
}

TEST(PerfettoTrace, ABoostIsASliceFromItsApplicationToItsUnboostWithReasonAndTrigger)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::vector<std::string> boosts = withName(json, "boost coboost");
	ASSERT_EQ(boosts.size(), 1u);
	const std::string &b = boosts[0];
	EXPECT_DOUBLE_EQ(field(b, "ts"), 51.0);  // issued at 21 us, applied 30 us later
	EXPECT_DOUBLE_EQ(field(b, "dur"), 29.0); // unboost applied at 80 us
	EXPECT_NE(b.find("\"tid\":10001"), std::string::npos) << "on the priority track";
	EXPECT_NE(b.find("\"reason\":\"coboost\""), std::string::npos);
	EXPECT_NE(b.find("\"budget_ns\":1000000"), std::string::npos);
	EXPECT_NE(b.find("\"after\":\"spin of vCPU 1 (pv)\""), std::string::npos) << b;
}

TEST(PerfettoTrace, LockHoldsSpinsAndOtherEventsHaveTheirPlaces)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::vector<std::string> held = withName(json, "lock held");
	ASSERT_EQ(held.size(), 1u);
	EXPECT_DOUBLE_EQ(field(held[0], "dur"), 30.0);
	EXPECT_NE(held[0].find("\"tid\":10002"), std::string::npos);
	ASSERT_EQ(withName(json, "spin pv").size(), 1u);
	EXPECT_NE(withName(json, "spin pv")[0].find("\"s\":\"t\""), std::string::npos);
	EXPECT_EQ(withName(json, "denied: debt").size(), 1u);
	EXPECT_EQ(withName(json, "move to CPU 1").size(), 1u);
	EXPECT_EQ(withName(json, "nice +5").size(), 1u);
	EXPECT_EQ(withName(json, "kicked by vCPU 0").size(), 1u);
	ASSERT_EQ(withName(json, "share_hold vm\\\"1").size(), 1u);
	EXPECT_NE(withName(json, "share_hold vm\\\"1")[0].find("\"s\":\"p\""), std::string::npos);
	ASSERT_EQ(withName(json, "turns_start").size(), 1u);
	EXPECT_NE(withName(json, "turns_start")[0].find("\"s\":\"g\""), std::string::npos);
	EXPECT_EQ(withName(json, "something_new").size(), 1u) << "unknown records are kept as instants";
}

TEST(PerfettoTrace, TickPeriodChangesAreGlobalInstants)
{
	const std::vector<TraceEntry> entries = { entry(kT0, "quiet_tick", { 0, 0 }, "scheduler", 10'000'000),
						  entry(kT0 + 5 * kUs, "fast_tick", { 0, 0 }, "scheduler", 1'000'000) };

	std::string json = toPerfettoJson(entries, kVms);

	ASSERT_EQ(withName(json, "quiet_tick").size(), 1u);
	EXPECT_NE(withName(json, "quiet_tick")[0].find("\"s\":\"g\""), std::string::npos);
	ASSERT_EQ(withName(json, "fast_tick").size(), 1u);
	EXPECT_NE(withName(json, "fast_tick")[0].find("\"s\":\"g\""), std::string::npos);
}

TEST(PerfettoTrace, SlicesStillOpenAtTheEndCloseThereMarkedUnfinished)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::vector<std::string> idle = withName(json, "sched_idle");
	ASSERT_EQ(idle.size(), 1u);
	EXPECT_DOUBLE_EQ(field(idle[0], "dur"), 0.0);
	EXPECT_NE(idle[0].find("\"unfinished\":true"), std::string::npos);
	for (const std::string &running : withName(json, "running")) {
		if (running.find("\"tid\":10000") != std::string::npos) {
			EXPECT_NE(running.find("\"unfinished\":true"), std::string::npos);
		}
	}
}

TEST(PerfettoTrace, SlicesOnOneTrackNeverOverlap)
{
	std::string json = toPerfettoJson(scenario(), kVms);

	std::map<std::string, std::vector<std::pair<double, double>>> byTrack;
	for (const std::string &e : eventsOf(json)) {
		std::smatch m;
		if (e.rfind("{\"ph\":\"X\"", 0) != 0 || !std::regex_search(e, m, std::regex(R"("tid":(\d+))")))
			continue;
		byTrack[m[1]].push_back({ field(e, "ts"), field(e, "ts") + field(e, "dur") });
	}
	ASSERT_FALSE(byTrack.empty());
	for (auto &[track, slices] : byTrack)
		for (size_t i = 1; i < slices.size(); ++i)
			EXPECT_LE(slices[i - 1].second, slices[i].first) << "track " << track;
}

TEST(PerfettoTrace, TheCoreRecordsOfACoboostConvert)
{
	test::Harness h(test::withPolicy(PolicyKind::Coboost));
	int vm = h.core.addVm("vm0", 2, nullptr);
	h.setStates(vm, { VcpuState::Running, VcpuState::Runnable }, { 0, 0 });

	h.core.spinDetected({ vm, 0 }, SpinSource::Pv, 1);
	std::vector<TraceEntry> entries;
	for (const TraceRecord &r : h.core.takeTrace())
		entries.push_back({ r.tNs, r.event, r.who, r.detail, r.value });
	for (const Action &a : h.core.takeActions()) {
		TraceRecord r = TraceWriter::actuationRecord(a);
		entries.push_back({ r.tNs, r.event, r.who, r.detail, r.value, 1000, 1 });
	}
	std::string json = toPerfettoJson(entries, { { "vm0", 2 } });

	EXPECT_EQ(spindle::test::JsonChecker::problem(json), "") << json;
	ASSERT_EQ(withName(json, "boost coboost").size(), 1u) << json;
	EXPECT_NE(withName(json, "boost coboost")[0].find("spin of vCPU 0 (pv)"), std::string::npos);
}

// ---- The writer --------------------------------------------------------------------------------

std::string readFile(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream text;
	text << in.rdbuf();
	return text.str();
}

TEST(TraceWriterPerfetto, WritesACompleteDocumentAtEveryFlush)
{
	char path[] = "/tmp/spindle-trace-test-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	auto writer = TraceWriter::open(path, TraceFormat::Perfetto);
	ASSERT_TRUE(writer.ok()) << writer.error().message();
	(*writer)->describeVm(0, "vm0", 2);

	(*writer)->record({ kT0, "state", { 0, 1 }, "running", 0 });
	(*writer)->flush();
	std::string first = readFile(path);
	Action boost{ ActionKind::Boost, { 0, 1 } };
	boost.issuedNs = kT0 + kUs;
	boost.budgetNs = 50'000;
	boost.reason = BoostReason::Express;
	(*writer)->actuation(boost, kT0 + 2 * kUs, true);
	(*writer)->flush();
	std::string second = readFile(path);
	writer->reset();
	std::remove(path);

	EXPECT_EQ(spindle::test::JsonChecker::problem(first), "") << first;
	EXPECT_EQ(spindle::test::JsonChecker::problem(second), "") << second;
	EXPECT_EQ(withName(first, "boost express").size(), 0u);
	EXPECT_EQ(withName(second, "boost express").size(), 1u);
	EXPECT_EQ(withName(second, "thread_name").size(), 3u) << "vCPU 0, vCPU 1 and vCPU 1 priority";
}

TEST(TraceWriterJsonLines, StaysOneObjectPerLine)
{
	char path[] = "/tmp/spindle-trace-test-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	auto writer = TraceWriter::open(path);
	ASSERT_TRUE(writer.ok());

	(*writer)->record({ kT0, "spin", { 0, 1 }, "pv", 0 });
	(*writer)->flush();
	std::string text = readFile(path);
	writer->reset();
	std::remove(path);

	EXPECT_EQ(text, TraceWriter::format({ kT0, "spin", { 0, 1 }, "pv", 0 }) + "\n");
}

TEST(TraceWriterJsonLines, StopsAtItsSizeLimitAndSaysHowManyRecordsItLeftOut)
{
	char path[] = "/tmp/spindle-trace-test-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	const std::string line = TraceWriter::format({ kT0, "spin", { 0, 1 }, "pv", 0 }) + "\n";
	auto writer = TraceWriter::open(path, TraceFormat::JsonLines, 3 * line.size());
	ASSERT_TRUE(writer.ok());

	for (int i = 0; i < 10; ++i)
		(*writer)->record({ kT0, "spin", { 0, 1 }, "pv", 0 });
	(*writer)->flush();
	std::string text = readFile(path);
	writer->reset();
	std::remove(path);

	EXPECT_EQ(text.substr(0, 3 * line.size()), line + line + line);
	EXPECT_NE(text.find("{\"ev\":\"suppressed\",\"value\":7,"), std::string::npos) << text;
	EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);
}

} // namespace
} // namespace spindle::sched

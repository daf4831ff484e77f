#include "sched/trace.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "common/json.h"

namespace spindle::sched {

// ---- Perfetto: Chrome trace-event JSON ------------------------------------------------------

namespace {

constexpr unsigned kStateLane = 0;
constexpr unsigned kPriorityLane = 1;
constexpr unsigned kLockLane = 2;
constexpr unsigned kLanes = 3;
// tids leave 10 per vCPU and 10000 per VM (see toPerfettoJson), so vCPU indices stop here; the
// ABI allows 256.
constexpr unsigned kMaxTraceVcpus = 999;
// A co-boost, express or yield boost is attributed to the VM's last spin this recent: the
// policy decides within the call that traced the spin, so a real trigger is microseconds old.
constexpr uint64_t kTriggerWindowNs = 2'000'000;

constexpr const char *kStates[] = { "running", "runnable", "halted", "parked" };
// VM-wide events: their vCPU field means nothing.
constexpr const char *kVmEvents[] = { "share_hold", "share_release", "gang_turn", "adapt_response", "adapt_slice" };

bool isOneOf(const std::string &name, const auto &list)
{
	return std::any_of(std::begin(list), std::end(list), [&](const char *item) { return name == item; });
}

// Argument objects are built as their inner text ("k":v,"k":v), so a key can still be added
// when a slice is closed.
void addArg(std::string &args, std::string_view key, std::string_view text)
{
	if (!args.empty())
		args += ',';
	appendJsonString(args, key);
	args += ':';
	appendJsonString(args, text);
}

void addArg(std::string &args, std::string_view key, uint64_t number)
{
	if (!args.empty())
		args += ',';
	appendJsonString(args, key);
	args += ':' + std::to_string(number);
}

void addRawArg(std::string &args, std::string_view key, std::string_view json)
{
	if (!args.empty())
		args += ',';
	appendJsonString(args, key);
	args += ':';
	args += json;
}

// Microseconds with three decimals, from nanoseconds, in integer arithmetic (no rounding, no
// exponent, exact for every 64-bit value).
std::string micros(uint64_t ns)
{
	std::string frac = std::to_string(ns % 1000);
	return std::to_string(ns / 1000) + '.' + std::string(3 - frac.size(), '0') + frac;
}

struct OutEvent {
	uint64_t tsNs = 0;
	uint64_t durNs = 0;
	char ph = 'i';    // 'X' slice, 'i' instant, 'C' counter, 'M' metadata
	char scope = 't'; // instants: 't' thread, 'p' process, 'g' global
	int pid = 0;
	int64_t tid = -1; // -1: none
	std::string name;
	std::string args; // inner text of the args object
};

struct OpenSlice {
	bool open = false;
	uint64_t startNs = 0;
	std::string name;
	std::string args;
};

struct VcpuTracks {
	OpenSlice lanes[kLanes];
	bool used[kLanes] = { true, false, false };
	std::string state;
	uint64_t locksHeld = 0;
};

struct VmTracks {
	std::string name;
	std::vector<VcpuTracks> vcpus;
	bool spinSeen = false;
	uint64_t spinNs = 0;
	unsigned spinVcpu = 0;
	std::string spinSource;
};

class PerfettoBuilder
{
public:
	explicit PerfettoBuilder(const std::vector<TraceVm> &vms)
	{
		for (const TraceVm &vm : vms) {
			vms_.emplace_back();
			vms_.back().name = vm.name;
			vms_.back().vcpus.resize(std::min(vm.vcpus, kMaxTraceVcpus));
		}
	}

	void add(const TraceEntry &e, uint64_t t)
	{
		// The core always names a VM (VM-wide and global events use vCPU 0 of VM 0 or their own).
		if (e.who.vm < 0 || e.who.vcpu >= kMaxTraceVcpus)
			return;
		if (e.event == "turns_start" || e.event == "turns_end" || e.event == "quiet_tick" || e.event == "fast_tick" || e.event == "turn_tick")
			return instant(t, 'g', e.who, kStateLane, e.event, detailArgs(e));
		if (isOneOf(e.event, kVmEvents))
			return instant(t, 'p', e.who, kStateLane, e.event + (e.detail.empty() ? "" : " " + e.detail),
				       detailArgs(e));
		VcpuTracks &v = tracks(e.who);
		if (e.event == "state")
			return setState(e.who, v, t, e.detail, e.value);
		if (e.event == "locks_held")
			return setLocks(e.who, v, t, e.value);
		if (e.event == "spin") {
			VmTracks &vm = vms_[index(e.who.vm)];
			vm.spinSeen = true;
			vm.spinNs = t;
			vm.spinVcpu = e.who.vcpu;
			vm.spinSource = e.detail;
			std::string args;
			addArg(args, "source", e.detail);
			if (e.value != kNoVcpu)
				addArg(args, "waits_on", e.value);
			return instant(t, 't', e.who, kStateLane, "spin " + e.detail, args);
		}
		if (e.event == "kick")
			return instant(t, 't', e.who, kStateLane, "kicked by vCPU " + std::to_string(e.value), {});
		if (isActuation(e.event))
			return actuation(e, v, t);
		if (e.event == "deny")
			return instant(t, 't', e.who, kPriorityLane, "denied: " + e.detail, {});
		instant(t, 't', e.who, kStateLane, e.event, detailArgs(e));
	}

	// Closes what is still open at endNs and returns every event, metadata first, then by time.
	std::vector<OutEvent> finish(uint64_t endNs)
	{
		for (size_t vm = 0; vm < vms_.size(); ++vm)
			for (unsigned vcpu = 0; vcpu < vms_[vm].vcpus.size(); ++vcpu)
				for (unsigned lane = 0; lane < kLanes; ++lane) {
					OpenSlice &s = vms_[vm].vcpus[vcpu].lanes[lane];
					if (s.open) {
						addRawArg(s.args, "unfinished", "true");
						close(vcpuId(vm, vcpu), lane, endNs);
					}
				}
		std::stable_sort(events_.begin(), events_.end(),
				 [](const OutEvent &a, const OutEvent &b) { return a.tsNs < b.tsNs; });
		std::vector<OutEvent> out = metadata();
		out.insert(out.end(), std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
		return out;
	}

private:
	static bool isActuation(const std::string &event)
	{
		return event == "boost" || event == "unboost" || event == "deprioritize" || event == "restore" ||
		       event == "move" || event == "set_nice";
	}

	// A VM seen only in records gets its process too (named by its index).
	size_t index(int vm)
	{
		auto i = static_cast<size_t>(vm);
		if (i >= vms_.size())
			vms_.resize(i + 1);
		return i;
	}

	VcpuTracks &tracks(VcpuId who)
	{
		VmTracks &vm = vms_[index(who.vm)];
		if (who.vcpu >= vm.vcpus.size())
			vm.vcpus.resize(who.vcpu + 1);
		return vm.vcpus[who.vcpu];
	}

	static VcpuId vcpuId(size_t vm, unsigned vcpu) { return { static_cast<int>(vm), vcpu }; }
	static int pidOf(int vm) { return vm + 1; }
	static int64_t tidOf(VcpuId who, unsigned lane)
	{
		return int64_t{ pidOf(who.vm) } * 10000 + int64_t{ who.vcpu } * 10 + lane;
	}

	static std::string detailArgs(const TraceEntry &e)
	{
		std::string args;
		if (!e.detail.empty())
			addArg(args, "detail", e.detail);
		addArg(args, "value", e.value);
		return args;
	}

	void instant(uint64_t t, char scope, VcpuId who, unsigned lane, std::string name, std::string args)
	{
		OutEvent e;
		e.tsNs = t;
		e.ph = 'i';
		e.scope = scope;
		e.pid = pidOf(who.vm);
		e.tid = scope == 't' ? tidOf(who, lane) : -1;
		e.name = std::move(name);
		e.args = std::move(args);
		if (scope == 't')
			tracks(who).used[lane] = true;
		events_.push_back(std::move(e));
	}

	void open(VcpuId who, unsigned lane, uint64_t t, std::string name, std::string args)
	{
		VcpuTracks &v = tracks(who);
		close(who, lane, t);
		v.lanes[lane] = { true, t, std::move(name), std::move(args) };
		v.used[lane] = true;
	}

	void close(VcpuId who, unsigned lane, uint64_t t)
	{
		OpenSlice &s = tracks(who).lanes[lane];
		if (!s.open)
			return;
		OutEvent e;
		e.tsNs = s.startNs;
		e.durNs = t > s.startNs ? t - s.startNs : 0;
		e.ph = 'X';
		e.pid = pidOf(who.vm);
		e.tid = tidOf(who, lane);
		e.name = std::move(s.name);
		e.args = std::move(s.args);
		events_.push_back(std::move(e));
		s = {};
	}

	void setState(VcpuId who, VcpuTracks &v, uint64_t t, const std::string &state, uint64_t cpu)
	{
		if (state == v.state)
			return;
		v.state = state;
		std::string args;
		if (cpu != kNoVcpu)
			addArg(args, "cpu", cpu);
		if (state.empty())
			close(who, kStateLane, t);
		else
			open(who, kStateLane, t, state, args);
		// The VM's counter: how many of its vCPUs are in each state from now on.
		const VmTracks &vm = vms_[index(who.vm)];
		std::string counts;
		for (const char *name : kStates)
			addArg(counts, name, static_cast<uint64_t>(std::count_if(
						     vm.vcpus.begin(), vm.vcpus.end(),
						     [name](const VcpuTracks &other) { return other.state == name; })));
		OutEvent e;
		e.tsNs = t;
		e.ph = 'C';
		e.pid = pidOf(who.vm);
		e.name = "vCPUs";
		e.args = std::move(counts);
		events_.push_back(std::move(e));
	}

	void setLocks(VcpuId who, VcpuTracks &v, uint64_t t, uint64_t held)
	{
		if (held == v.locksHeld)
			return;
		v.locksHeld = held;
		if (held == 0)
			return close(who, kLockLane, t);
		std::string args;
		addArg(args, "locks_held", held);
		open(who, kLockLane, t, held == 1 ? "lock held" : "locks held", args);
	}

	// Why a boost was granted, as far as the trace shows it.
	std::string trigger(VcpuId who, const std::string &reason, uint64_t t) const
	{
		if (reason == "extend")
			return "its hint: a lock held";
		if (reason == "gang")
			return "its VM's gang turn";
		const VmTracks &vm = vms_[static_cast<size_t>(who.vm)];
		if (vm.spinSeen && t >= vm.spinNs && t - vm.spinNs <= kTriggerWindowNs)
			return "spin of vCPU " + std::to_string(vm.spinVcpu) + " (" + vm.spinSource + ")";
		return "";
	}

	void actuation(const TraceEntry &e, VcpuTracks &v, uint64_t t)
	{
		if (e.ok == 0)
			return instant(t, 't', e.who, kPriorityLane, e.event + " failed", detailArgs(e));
		OpenSlice &priority = v.lanes[kPriorityLane];
		if (e.event == "boost") {
			std::string args;
			addArg(args, "reason", e.detail);
			addArg(args, "budget_ns", e.value);
			if (e.latencyNs >= 0)
				addArg(args, "latency_ns", static_cast<uint64_t>(e.latencyNs));
			std::string by = trigger(e.who, e.detail, t);
			if (!by.empty())
				addArg(args, "after", by);
			return open(e.who, kPriorityLane, t, "boost " + e.detail, args);
		}
		if (e.event == "deprioritize")
			return open(e.who, kPriorityLane, t, "sched_idle", {});
		if (e.event == "unboost" || e.event == "restore") {
			// Each ends its own kind only: an unboost after a deprioritization changed nothing.
			bool boost = priority.open && priority.name.rfind("boost", 0) == 0;
			if (boost == (e.event == "unboost"))
				close(e.who, kPriorityLane, t);
			return;
		}
		if (e.event == "move")
			return instant(t, 't', e.who, kPriorityLane, "move to CPU " + std::to_string(e.value), {});
		// set_nice: the value is the increment over the thread's own nice, as a signed int.
		auto nice = static_cast<int32_t>(static_cast<uint32_t>(e.value));
		instant(t, 't', e.who, kPriorityLane,
			nice == 0 ? std::string("nice restored") : "nice " + std::string(nice > 0 ? "+" : "") + std::to_string(nice),
			{});
	}

	std::vector<OutEvent> metadata() const
	{
		std::vector<OutEvent> out;
		auto meta = [&out](int pid, int64_t tid, const char *what, std::string args) {
			OutEvent e;
			e.ph = 'M';
			e.pid = pid;
			e.tid = tid;
			e.name = what;
			e.args = std::move(args);
			out.push_back(std::move(e));
		};
		for (size_t i = 0; i < vms_.size(); ++i) {
			const VmTracks &vm = vms_[i];
			VcpuId first = vcpuId(i, 0);
			std::string name;
			addArg(name, "name", vm.name.empty() ? "vm " + std::to_string(i) : vm.name);
			meta(pidOf(first.vm), -1, "process_name", name);
			std::string sort;
			addArg(sort, "sort_index", i);
			meta(pidOf(first.vm), -1, "process_sort_index", sort);
			for (unsigned vcpu = 0; vcpu < vm.vcpus.size(); ++vcpu) {
				static constexpr const char *kSuffix[kLanes] = { "", " priority", " lock" };
				for (unsigned lane = 0; lane < kLanes; ++lane) {
					if (!vm.vcpus[vcpu].used[lane])
						continue;
					VcpuId who = vcpuId(i, vcpu);
					std::string thread;
					addArg(thread, "name", "vCPU " + std::to_string(vcpu) + kSuffix[lane]);
					meta(pidOf(who.vm), tidOf(who, lane), "thread_name", thread);
					std::string order;
					addArg(order, "sort_index", vcpu * 10 + lane);
					meta(pidOf(who.vm), tidOf(who, lane), "thread_sort_index", order);
				}
			}
		}
		return out;
	}

	std::vector<VmTracks> vms_;
	std::vector<OutEvent> events_;
};

// When an entry took effect: an actuation when its system call ended, anything else when it
// was recorded.
uint64_t effectiveNs(const TraceEntry &e)
{
	return e.tNs + (e.latencyNs > 0 ? static_cast<uint64_t>(e.latencyNs) : 0);
}

void appendEvent(std::string &out, const OutEvent &e, uint64_t originNs)
{
	out += "{\"ph\":\"";
	out += e.ph;
	out += "\",\"name\":";
	appendJsonString(out, e.name);
	out += ",\"pid\":" + std::to_string(e.pid);
	if (e.tid >= 0)
		out += ",\"tid\":" + std::to_string(e.tid);
	if (e.ph != 'M')
		out += ",\"ts\":" + micros(e.tsNs - originNs);
	if (e.ph == 'X')
		out += ",\"dur\":" + micros(e.durNs);
	if (e.ph == 'i') {
		out += ",\"s\":\"";
		out += e.scope;
		out += '"';
	}
	out += ",\"args\":{" + e.args + "}}";
}

} // namespace

std::string toPerfettoJson(std::vector<TraceEntry> entries, const std::vector<TraceVm> &vms, uint64_t droppedEntries)
{
	std::stable_sort(entries.begin(), entries.end(),
			 [](const TraceEntry &a, const TraceEntry &b) { return effectiveNs(a) < effectiveNs(b); });
	const uint64_t origin = entries.empty() ? 0 : effectiveNs(entries.front());
	const uint64_t end = entries.empty() ? 0 : effectiveNs(entries.back());

	PerfettoBuilder builder(vms);
	for (const TraceEntry &e : entries)
		builder.add(e, effectiveNs(e));
	std::vector<OutEvent> events = builder.finish(end);

	std::string out = "{\"traceEvents\":[";
	for (size_t i = 0; i < events.size(); ++i) {
		if (i != 0)
			out += ",\n";
		appendEvent(out, events[i], origin);
	}
	out += "],\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"spindle\",\"dropped_records\":" +
	       std::to_string(droppedEntries) + "}}\n";
	return out;
}

// ---- TraceWriter ----------------------------------------------------------------------------

Result<std::unique_ptr<TraceWriter>> TraceWriter::open(const std::string &path, TraceFormat format,
							uint64_t maxJsonLinesBytes)
{
	FILE *file = std::fopen(path.c_str(), "we");
	if (!file)
		return Error::fromErrno("opening trace file " + path);
	return std::unique_ptr<TraceWriter>(new TraceWriter(file, format, maxJsonLinesBytes));
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

TraceRecord TraceWriter::actuationRecord(const Action &a)
{
	return TraceRecord{ a.issuedNs, toString(a.kind), a.who, a.kind == ActionKind::Boost ? toString(a.reason) : "",
			    a.kind == ActionKind::Boost ? a.budgetNs
			    : a.kind == ActionKind::Move ? static_cast<uint64_t>(a.cpu)
							  : static_cast<uint64_t>(a.nice) };
}

void TraceWriter::describeVm(int vm, std::string name, unsigned vcpus)
{
	if (vm < 0)
		return;
	if (static_cast<size_t>(vm) >= vms_.size())
		vms_.resize(static_cast<size_t>(vm) + 1);
	vms_[static_cast<size_t>(vm)] = { std::move(name), vcpus };
}

void TraceWriter::keep(const TraceRecord &r, int64_t latencyNs, int ok)
{
	if (format_ == TraceFormat::JsonLines) {
		std::string line = format(r, latencyNs, ok);
		line += '\n';
		if (written_ + line.size() > maxBytes_) {
			dropped_++;
			return;
		}
		written_ += line.size();
		std::fwrite(line.data(), 1, line.size(), file_);
		return;
	}
	if (entries_.size() >= kMaxBufferedEntries) {
		dropped_++;
		return;
	}
	entries_.push_back({ r.tNs, r.event ? r.event : "", r.who, r.detail ? r.detail : "", r.value, latencyNs, ok });
}

void TraceWriter::record(const TraceRecord &r)
{
	// Detections, denials, turns, adaptations. Actions have no record here: actuation() writes
	// them, with their latency.
	keep(r, -1, -1);
}

void TraceWriter::actuation(const Action &a, uint64_t doneNs, bool ok)
{
	keep(actuationRecord(a), static_cast<int64_t>(doneNs - a.issuedNs), ok ? 1 : 0);
}

void TraceWriter::flush()
{
	if (format_ == TraceFormat::Perfetto) {
		// The whole document each time: a trace-event file is one JSON value, not a stream.
		std::string json = toPerfettoJson(entries_, vms_, dropped_);
		std::rewind(file_);
		if (ftruncate(fileno(file_), 0) != 0)
			return; // a trace is best effort; the run's own results are elsewhere
		std::fwrite(json.data(), 1, json.size(), file_);
	} else if (dropped_ > 0) {
		// Once per flush, and only past the cap: one line that says what the file lacks.
		const std::string line = "{\"ev\":\"suppressed\",\"value\":" + std::to_string(dropped_) +
					 ",\"detail\":\"records past the trace's size limit\"}\n";
		std::fwrite(line.data(), 1, line.size(), file_);
		dropped_ = 0;
	}
	std::fflush(file_);
}

} // namespace spindle::sched

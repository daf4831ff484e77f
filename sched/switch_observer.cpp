#include "sched/switch_observer.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/parse.h"
#include "sched/ple.h"

namespace spindle::sched {

namespace {

// 32 data pages per CPU: a record is about 88 bytes, so one ring holds about 1,500 events, 30 ms
// at 50,000 events per second on that CPU (a scheduler thread starved that long still finds the
// ring whole; past it, see below).
constexpr size_t kPage = 4096, kDataPages = 32, kDataBytes = kDataPages * kPage, kMapBytes = kPage + kDataBytes;
// A ring this close to full may have dropped records whose PERF_RECORD_LOST is not written yet
// (the kernel writes it once there is room again), so such a drain counts as lossy.
constexpr size_t kFullMargin = 512;
// The state bits of prev_state (TASK_REPORT); a set bit above them is the kernel's "preempted"
// marker (TASK_REPORT_MAX), shown as "R+".
constexpr uint64_t kTaskReportMask = 0xff;

// "offset:24;" -> 24 in the line of field `name` of a format file.
std::optional<uint32_t> fieldOffset(std::string_view text, std::string_view name, uint32_t *size = nullptr)
{
	const std::string needle = " " + std::string(name) + ";";
	const size_t at = text.find(needle);
	if (at == std::string_view::npos)
		return std::nullopt;
	const size_t end = text.find('\n', at);
	const std::string_view line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
	auto number = [&](std::string_view key) -> std::optional<uint32_t> {
		const size_t k = line.find(key);
		if (k == std::string_view::npos)
			return std::nullopt;
		const size_t from = k + key.size(), to = line.find(';', from);
		auto value = parseUnsigned(std::string(line.substr(from, to - from)), 0, 1u << 16);
		return value ? std::optional<uint32_t>(static_cast<uint32_t>(*value)) : std::nullopt;
	};
	if (size)
		if (auto s = number("size:"))
			*size = *s;
	return number("offset:");
}

template<typename T>
T readAt(std::span<const uint8_t> raw, uint32_t offset)
{
	T value;
	std::memcpy(&value, raw.data() + offset, sizeof(T));
	return value;
}

} // namespace

Result<SwitchFormat> parseSwitchFormat(std::string_view text)
{
	SwitchFormat format;
	auto prevPid = fieldOffset(text, "prev_pid");
	auto prevState = fieldOffset(text, "prev_state", &format.prevStateSize);
	auto nextPid = fieldOffset(text, "next_pid");
	if (!prevPid || !prevState || !nextPid)
		return Error::invalid("sched:sched_switch format without prev_pid, prev_state or next_pid");
	if (format.prevStateSize != 4 && format.prevStateSize != 8)
		return Error::invalid("sched:sched_switch prev_state of " + std::to_string(format.prevStateSize) + " bytes");
	format.prevPid = *prevPid;
	format.prevState = *prevState;
	format.nextPid = *nextPid;
	return format;
}

std::optional<SwitchEvent> decodeSwitch(std::span<const uint8_t> raw, const SwitchFormat &format, uint64_t timeNs,
					int cpu)
{
	const uint32_t end = std::max({format.prevPid + 4, format.prevState + format.prevStateSize, format.nextPid + 4});
	if (raw.size() < end)
		return std::nullopt;
	const uint64_t state = format.prevStateSize == 8 ? readAt<uint64_t>(raw, format.prevState)
							 : readAt<uint32_t>(raw, format.prevState);
	SwitchEvent event;
	event.timeNs = timeNs;
	event.cpu = cpu;
	event.prevPid = readAt<int32_t>(raw, format.prevPid);
	// Runnable when no sleep state is set (R), or when the preempted marker above them is.
	event.prevRunnable = (state & kTaskReportMask) == 0 || (state & ~kTaskReportMask) != 0;
	event.nextPid = readAt<int32_t>(raw, format.nextPid);
	return event;
}

SwitchTracker::CpuSeen *SwitchTracker::cpuSeen(int cpu)
{
	if (cpu < 0 || cpu >= kMaxCpus)
		return nullptr;
	if (static_cast<size_t>(cpu) >= cpus_.size())
		cpus_.resize(static_cast<size_t>(cpu) + 1);
	return &cpus_[static_cast<size_t>(cpu)];
}

void SwitchTracker::setRunningOn(int cpu, pid_t tid)
{
	if (cpu < 0 || cpu >= kMaxCpus)
		return;
	if (static_cast<size_t>(cpu) >= runningOn_.size())
		runningOn_.resize(static_cast<size_t>(cpu) + 1, 0);
	runningOn_[static_cast<size_t>(cpu)] = tid;
}

void SwitchTracker::clearRunningOn(int cpu, pid_t tid)
{
	if (cpu >= 0 && static_cast<size_t>(cpu) < runningOn_.size() && runningOn_[static_cast<size_t>(cpu)] == tid)
		runningOn_[static_cast<size_t>(cpu)] = 0;
}

void SwitchTracker::track(pid_t tid, VcpuState initial, int cpu, uint64_t nowNs)
{
	Thread *t = threads_.insert(tid);
	if (!t)
		return; // no thread id
	clearRunningOn(t->view.cpu, tid); // tracked again: what was believed of it goes
	*t = Thread{};
	t->view = { initial, cpu, 0 };
	t->runningSinceNs = nowNs;
	t->syncedAtNs = nowNs;
	if (initial == VcpuState::Running) {
		setRunningOn(cpu, tid);
		if (CpuSeen *seen = cpuSeen(cpu))
			*seen = { tid, nowNs }; // it tracks itself, on that CPU
	}
}

void SwitchTracker::untrack(pid_t tid)
{
	const Thread *t = threads_.find(tid);
	if (!t)
		return;
	clearRunningOn(t->view.cpu, tid);
	threads_.erase(tid);
}

void SwitchTracker::suspect(pid_t tid, Thread &t)
{
	if (!t.suspect)
		suspects_.push_back(tid);
	t.suspect = true;
}

void SwitchTracker::stopRunning(Thread &t, uint64_t atNs)
{
	if (t.view.state != VcpuState::Running || t.displaced || atNs <= t.runningSinceNs)
		return;
	const uint64_t stintNs = atNs - t.runningSinceNs;
	t.view.runtimeNs += stintNs;
	if (t.exactStart) // both ends seen: what a lost switch-in's stint is guessed from
		t.typicalStintNs = t.typicalStintNs == 0 ? stintNs : (7 * t.typicalStintNs + stintNs) / 8;
	t.exactStart = false;
}

bool SwitchTracker::applyObserverSwitch(const SwitchEvent &event, CpuSeen &cpu)
{
	// The observer (the scheduler thread) taking a vCPU's CPU for its tick is no preemption to
	// report: the vCPU is displaced, still running to the policies, its CPU time paused.
	if (event.nextPid == observer_ && event.prevRunnable) {
		Thread *prev = threads_.find(event.prevPid);
		if (!prev || event.timeNs < prev->syncedAtNs || prev->view.state != VcpuState::Running ||
		    cpu.current != event.prevPid)
			return false;
		stopRunning(*prev, event.timeNs);
		prev->displaced = true;
		cpu.current = observer_;
		cpu.lastNs = event.timeNs;
		return true;
	}
	if (event.prevPid != observer_)
		return false;
	// The observer leaves: the displaced vCPU resumes, or another thread took the CPU.
	const pid_t displacedTid = runningOn(event.cpu).value_or(0);
	Thread *displaced = threads_.find(displacedTid);
	if (!displaced || !displaced->displaced)
		return false;
	Thread &t = *displaced;
	t.displaced = false;
	if (event.nextPid == displacedTid) {
		t.runningSinceNs = event.timeNs;
		t.exactStart = false; // the rest of a stint: too short to learn from
		cpu.current = event.nextPid;
		cpu.lastNs = event.timeNs;
		return true;
	}
	t.view.state = VcpuState::Runnable;
	clearRunningOn(event.cpu, displacedTid);
	return false; // the switch to the other thread follows as usual
}

void SwitchTracker::apply(const SwitchEvent &event)
{
	CpuSeen *seen = cpuSeen(event.cpu);
	if (!seen)
		return; // not from a CPU
	CpuSeen &cpu = *seen;
	if (observer_ > 0 && applyObserverSwitch(event, cpu))
		return;
	if (cpu.current >= 0 && cpu.current != event.prevPid)
		missedBefore(event, cpu);
	if (Thread *prev = threads_.find(event.prevPid); prev && event.timeNs >= prev->syncedAtNs) {
		Thread &t = *prev;
		if (t.view.state == VcpuState::Running)
			stopRunning(t, event.timeNs);
		else if (t.fromEvents)
			suspect(event.prevPid, t); // its switch-in was not delivered and could not be inferred
		clearRunningOn(t.view.cpu, event.prevPid); // believed running elsewhere: it moved unseen
		t.view.state = event.prevRunnable ? VcpuState::Runnable : VcpuState::Halted;
		t.view.cpu = event.cpu;
		t.fromEvents = true;
		t.stateInDoubt = false;
	}
	if (Thread *next = threads_.find(event.nextPid); next && event.timeNs >= next->syncedAtNs) {
		Thread &t = *next;
		if (t.view.state == VcpuState::Running) { // still running elsewhere: a switch-out was lost
			stopRunning(t, event.timeNs);
			clearRunningOn(t.view.cpu, event.nextPid);
			if (t.fromEvents)
				suspect(event.nextPid, t);
		}
		t.view.state = VcpuState::Running;
		t.view.cpu = event.cpu;
		t.runningSinceNs = event.timeNs;
		t.exactStart = true;
		t.fromEvents = true;
		t.stateInDoubt = false;
		setRunningOn(event.cpu, event.nextPid);
	}
	cpu.current = event.nextPid;
	cpu.lastNs = event.timeNs;
}

void SwitchTracker::missedBefore(const SwitchEvent &event, const CpuSeen &cpu)
{
	// At least one switch on this CPU, from cpu.current to (eventually) event.prevPid, was not
	// delivered (switch_observer.h says how often).
	missed_++;
	if (Thread *lost = threads_.find(cpu.current); lost && event.timeNs >= lost->syncedAtNs) {
		Thread &t = *lost; // believed running here, but its switch-out was lost
		if (t.view.state == VcpuState::Running && t.view.cpu == event.cpu) {
			t.view.state = VcpuState::Runnable;
			t.stateInDoubt = true;
			clearRunningOn(event.cpu, cpu.current);
			suspect(cpu.current, t);
		}
	}
	Thread *prev = threads_.find(event.prevPid);
	if (!prev || event.timeNs < prev->syncedAtNs)
		return;
	Thread &t = *prev;
	if (t.view.state == VcpuState::Running)
		return;
	// Woken since the CPU's last switch: it ran from then (an idle CPU runs a woken thread at
	// once). Otherwise, or when another thread was running, when it started is a guess.
	const bool wokenSince = t.wokenAtNs >= t.syncedAtNs && t.wokenAtNs >= cpu.lastNs;
	const uint64_t from = std::min(wokenSince ? t.wokenAtNs : cpu.lastNs, event.timeNs);
	t.view.state = VcpuState::Running;
	t.exactStart = false;
	if (cpu.current == 0 && wokenSince) {
		t.runningSinceNs = from;
		return;
	}
	// It ran for at most the whole gap; its usual stint is the likelier length. The gap is what
	// the guess can be off by, and schedstat is read once those add up to the budget, not at
	// every guess: on our PVM host that guess is most of the switches out of idle on one CPU.
	const uint64_t gapNs = event.timeNs - from;
	t.runningSinceNs = event.timeNs - (t.typicalStintNs > 0 ? std::min(gapNs, t.typicalStintNs) : gapNs);
	t.unverifiedNs += gapNs;
	if (t.unverifiedNs > kUnverifiedBudgetNs)
		suspect(event.prevPid, t);
}

std::vector<pid_t> SwitchTracker::takeSuspects()
{
	std::vector<pid_t> out;
	out.swap(suspects_);
	for (pid_t tid : out)
		if (Thread *t = threads_.find(tid))
			t->suspect = false;
	return out;
}

bool SwitchTracker::stateInDoubt(pid_t tid) const
{
	const Thread *t = threads_.find(tid);
	return t && t->stateInDoubt;
}

uint64_t SwitchTracker::unverifiedNs(pid_t tid) const
{
	const Thread *t = threads_.find(tid);
	return t ? t->unverifiedNs : 0;
}

void SwitchTracker::setRuntime(pid_t tid, uint64_t runtimeNs, uint64_t nowNs)
{
	Thread *t = threads_.find(tid);
	if (!t)
		return;
	t->view.runtimeNs = runtimeNs;
	t->runningSinceNs = nowNs; // a running thread's stint counts on from here
	t->exactStart = false;
	t->unverifiedNs = 0;
}

std::optional<pid_t> SwitchTracker::runningOn(int cpu) const
{
	if (cpu < 0 || static_cast<size_t>(cpu) >= runningOn_.size() || runningOn_[static_cast<size_t>(cpu)] == 0)
		return std::nullopt;
	return runningOn_[static_cast<size_t>(cpu)];
}

Result<WakeupFormat> parseWakeupFormat(std::string_view text)
{
	auto pid = fieldOffset(text, "pid");
	auto targetCpu = fieldOffset(text, "target_cpu");
	if (!pid || !targetCpu)
		return Error::invalid("sched:sched_wakeup format without pid or target_cpu");
	return WakeupFormat{ *pid, *targetCpu };
}

std::optional<WakeupEvent> decodeWakeup(std::span<const uint8_t> raw, const WakeupFormat &format, uint64_t timeNs)
{
	if (raw.size() < std::max(format.pid, format.targetCpu) + 4)
		return std::nullopt;
	return WakeupEvent{ timeNs, readAt<int32_t>(raw, format.pid), readAt<int32_t>(raw, format.targetCpu) };
}

void SwitchTracker::apply(const WakeupEvent &event)
{
	Thread *t = threads_.find(event.pid);
	if (!t || event.timeNs < t->syncedAtNs)
		return;
	t->wokenAtNs = event.timeNs;
	if (t->stateInDoubt) { // it was asleep after all, and is runnable now
		t->stateInDoubt = false;
		t->view.cpu = event.targetCpu;
	}
	sawRunnable(event.pid, event.targetCpu);
}

void SwitchTracker::sawRunnable(pid_t tid, int cpu)
{
	if (Thread *t = threads_.find(tid); t && t->view.state == VcpuState::Halted) {
		t->view.state = VcpuState::Runnable;
		t->view.cpu = cpu;
	}
}

void SwitchTracker::resync(pid_t tid, VcpuState state, int cpu, uint64_t nowNs, std::optional<uint64_t> runtimeNs)
{
	Thread *found = threads_.find(tid);
	if (!found)
		return;
	Thread &t = *found;
	stopRunning(t, nowNs);
	if (runtimeNs)
		t.view.runtimeNs = *runtimeNs;
	clearRunningOn(t.view.cpu, tid);
	t.view.state = state;
	t.view.cpu = cpu;
	t.runningSinceNs = nowNs;
	t.syncedAtNs = nowNs;
	t.fromEvents = false;
	t.displaced = false;
	t.stateInDoubt = false;
	t.exactStart = false;
	t.unverifiedNs = 0;
	if (state == VcpuState::Running)
		setRunningOn(cpu, tid);
}

std::optional<SwitchTracker::View> SwitchTracker::view(pid_t tid, uint64_t nowNs) const
{
	const Thread *t = threads_.find(tid);
	if (!t)
		return std::nullopt;
	View v = t->view;
	if (v.state == VcpuState::Running && !t->displaced && nowNs > t->runningSinceNs)
		v.runtimeNs += nowNs - t->runningSinceNs;
	return v;
}

Result<std::unique_ptr<SwitchObserver>> SwitchObserver::open(const std::vector<int> &pool,
							     const std::vector<int> &online)
{
	auto switchId = tracepointId("sched/sched_switch");
	if (!switchId)
		return switchId.error();
	auto wakeupId = tracepointId("sched/sched_wakeup");
	if (!wakeupId)
		return wakeupId.error();
	auto switchText = readTraceEventFile("sched/sched_switch", "format");
	if (!switchText)
		return switchText.error();
	auto wakeupText = readTraceEventFile("sched/sched_wakeup", "format");
	if (!wakeupText)
		return wakeupText.error();
	auto switchFormat = parseSwitchFormat(*switchText);
	if (!switchFormat)
		return switchFormat.error();
	auto wakeupFormat = parseWakeupFormat(*wakeupText);
	if (!wakeupFormat)
		return wakeupFormat.error();
	if (*switchId > 0xffff || *wakeupId > 0xffff)
		return Error::invalid("sched tracepoint ids above 16 bits");
	std::unique_ptr<SwitchObserver> observer(new SwitchObserver());
	observer->switchFormat_ = *switchFormat;
	observer->wakeupFormat_ = *wakeupFormat;
	observer->switchId_ = static_cast<uint16_t>(*switchId);
	observer->wakeupId_ = static_cast<uint16_t>(*wakeupId);
	auto openEvent = [](uint64_t id, int cpu) {
		perf_event_attr attr{};
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_TRACEPOINT;
		attr.config = id;
		attr.sample_period = 1;
		attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
		attr.use_clockid = 1;
		attr.clockid = CLOCK_MONOTONIC;
		return static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
	};
	for (int cpu : online) {
		Ring ring;
		ring.cpu = cpu;
		ring.fd.reset(openEvent(*wakeupId, cpu));
		if (!ring.fd.isValid())
			return Error::fromErrno("perf_event_open(sched:sched_wakeup) on CPU " + std::to_string(cpu));
		ring.map = mmap(nullptr, kMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, ring.fd.get(), 0);
		if (ring.map == MAP_FAILED) {
			ring.map = nullptr;
			return Error::fromErrno("mmap of the sched event ring of CPU " + std::to_string(cpu));
		}
		if (std::find(pool.begin(), pool.end(), cpu) != pool.end()) {
			ring.switchFd.reset(openEvent(*switchId, cpu));
			if (!ring.switchFd.isValid())
				return Error::fromErrno("perf_event_open(sched:sched_switch) on CPU " + std::to_string(cpu));
			if (ioctl(ring.switchFd.get(), PERF_EVENT_IOC_SET_OUTPUT, ring.fd.get()) != 0)
				return Error::fromErrno("PERF_EVENT_IOC_SET_OUTPUT (sched_switch into CPU " +
							std::to_string(cpu) + "'s ring)");
		}
		observer->rings_.push_back(std::move(ring));
	}
	return observer;
}

SwitchObserver::~SwitchObserver()
{
	for (Ring &ring : rings_)
		if (ring.map)
			munmap(ring.map, kMapBytes);
}

namespace {
// Copies n bytes at ring offset from (any position: it wraps) out of the data area.
void copyOut(const uint8_t *data, uint64_t from, size_t n, void *to)
{
	const size_t at = from % kDataBytes, first = std::min(n, kDataBytes - at);
	std::memcpy(to, data + at, first);
	std::memcpy(static_cast<uint8_t *>(to) + first, data, n - first);
}
} // namespace

void SwitchObserver::readRing(Ring &ring, Drained &drained)
{
	auto *header = static_cast<perf_event_mmap_page *>(ring.map);
	const auto *data = static_cast<const uint8_t *>(ring.map) + kPage;
	const uint64_t head = __atomic_load_n(&header->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = header->data_tail;
	if (head - tail + kFullMargin > kDataBytes)
		drained.lost++;
	uint8_t wrapped[256];
	while (tail < head) {
		perf_event_header h;
		copyOut(data, tail, sizeof(h), &h);
		// A record claiming more than the ring holds is no record: skip what is there.
		const size_t size = std::max<size_t>(h.size, sizeof(h));
		if (size > head - tail) {
			tail = head;
			break;
		}
		// Read in place; only a record across the ring's end is copied out first.
		const size_t at = tail % kDataBytes;
		const uint8_t *record = data + at;
		size_t copied = size;
		if (at + size > kDataBytes) {
			copied = std::min(size, sizeof(wrapped));
			copyOut(data, tail, copied, wrapped);
			record = wrapped;
		}
		tail += size;
		if (h.type == PERF_RECORD_LOST && copied >= sizeof(h) + 16) {
			uint64_t lost; // after the header: u64 id, u64 lost
			std::memcpy(&lost, record + sizeof(h) + 8, 8);
			drained.lost += lost;
			continue;
		}
		// header, u64 time, u32 raw size, raw bytes (common_type first)
		if (h.type != PERF_RECORD_SAMPLE || copied < sizeof(h) + 12 + 2)
			continue;
		uint64_t time;
		uint32_t rawSize;
		std::memcpy(&time, record + sizeof(h), 8);
		std::memcpy(&rawSize, record + sizeof(h) + 8, 4);
		const size_t rawAt = sizeof(h) + 12;
		rawSize = static_cast<uint32_t>(std::min<size_t>(rawSize, copied - rawAt));
		const std::span<const uint8_t> raw(record + rawAt, rawSize);
		uint16_t type = 0;
		if (rawSize >= 2)
			std::memcpy(&type, raw.data(), 2);
		// Decoded here, while the record is in hand; applied in time order after every ring.
		if (type == switchId_) {
			if (auto event = decodeSwitch(raw, switchFormat_, time, ring.cpu))
				pending_.push_back({ time, static_cast<uint32_t>(pending_.size()), false, *event, {} });
		} else if (type == wakeupId_) {
			if (auto event = decodeWakeup(raw, wakeupFormat_, time))
				pending_.push_back({ time, static_cast<uint32_t>(pending_.size()), true, {}, *event });
		}
	}
	__atomic_store_n(&header->data_tail, tail, __ATOMIC_RELEASE);
}

SwitchObserver::Drained SwitchObserver::drain()
{
	Drained drained;
	pending_.clear();
	for (Ring &ring : rings_)
		readRing(ring, drained);
	// Ties keep the rings' order; std::sort on (time, order) needs no buffer, stable_sort does.
	std::sort(pending_.begin(), pending_.end(), [](const Pending &a, const Pending &b) {
		return a.timeNs != b.timeNs ? a.timeNs < b.timeNs : a.order < b.order;
	});
	for (const Pending &p : pending_) {
		if (p.wakeup)
			tracker_.apply(p.wakeupEvent);
		else
			tracker_.apply(p.switchEvent);
	}
	drained.events += pending_.size();
	return drained;
}

} // namespace spindle::sched

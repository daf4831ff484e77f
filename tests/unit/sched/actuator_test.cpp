// The actuator and the Scheduler on real threads: ordinary threads stand in for vCPU threads.
// These assert state changes read back from the kernel, never timings, and skip where the
// machine forbids a policy.

#include <gtest/gtest.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <sstream>
#include <thread>

#include "sched/actuator.h"
#include "sched/scheduler.h"
#include "tests/support/files.h"
#include "tests/support/proc_threads.h"

namespace spindle::sched {
namespace {

using namespace std::chrono_literals;

// A thread that spins, counting its loops; with a ticket lock it spins like a vCPU in a guest.
class SpinThread
{
public:
	explicit SpinThread(std::atomic<uint64_t> *ticket = nullptr, std::atomic<uint64_t> *serving = nullptr)
	{
		thread_ = std::thread([this, ticket, serving] {
			tid_.store(gettid());
			while (!stop_.load(std::memory_order_relaxed)) {
				if (ticket) {
					uint64_t mine = ticket->fetch_add(1);
					while (serving->load(std::memory_order_acquire) != mine &&
					       !stop_.load(std::memory_order_relaxed))
						__builtin_ia32_pause();
					loops_.fetch_add(1, std::memory_order_relaxed);
					serving->store(mine + 1, std::memory_order_release);
				} else {
					loops_.fetch_add(1, std::memory_order_relaxed);
				}
			}
		});
		while (tid_.load() == 0)
			std::this_thread::yield();
	}
	~SpinThread()
	{
		stop_.store(true);
		thread_.join();
	}
	pid_t tid() const { return tid_.load(); }
	uint64_t loops() const { return loops_.load(std::memory_order_relaxed); }

private:
	std::atomic<pid_t> tid_{ 0 };
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> loops_{ 0 };
	std::thread thread_;
};

std::vector<int> affinityOf(pid_t tid)
{
	cpu_set_t set;
	EXPECT_EQ(sched_getaffinity(tid, sizeof(set), &set), 0);
	std::vector<int> cpus;
	for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
		if (CPU_ISSET(cpu, &set))
			cpus.push_back(cpu);
	return cpus;
}

uint32_t policyOf(pid_t tid)
{
	auto attr = getSchedAttr(tid);
	EXPECT_TRUE(attr.ok());
	return attr.ok() ? attr->policy : ~0u;
}

bool needsTwoCpus()
{
	return std::thread::hardware_concurrency() < 2;
}

// A thread's scheduling state as /proc shows it: read independently of the actuator's own
// read-back (which uses sched_getattr and sched_getaffinity).
struct ProcSchedState {
	long nice = 0, rtPriority = 0, policy = -1; // stat fields 19, 40, 41
	std::string cpusAllowed;                    // status: Cpus_allowed_list
	bool operator==(const ProcSchedState &) const = default;
};

std::ostream &operator<<(std::ostream &out, const ProcSchedState &s)
{
	return out << "{policy " << s.policy << ", rt priority " << s.rtPriority << ", nice " << s.nice << ", CPUs "
		   << s.cpusAllowed << "}";
}

ProcSchedState procSchedState(pid_t tid)
{
	const std::string task = "/proc/self/task/" + std::to_string(tid);
	ProcSchedState state;
	const std::string stat = test::readFile(task + "/stat");
	// Fields after the command name (which may hold spaces) start at field 3.
	std::istringstream fields(stat.substr(stat.rfind(')') + 2));
	std::string field;
	for (int n = 3; fields >> field && n <= 41; ++n) {
		if (n == 19)
			state.nice = std::stol(field);
		else if (n == 40)
			state.rtPriority = std::stol(field);
		else if (n == 41)
			state.policy = std::stol(field);
	}
	std::istringstream status(test::readFile(task + "/status"));
	for (std::string line; std::getline(status, line);)
		if (line.rfind("Cpus_allowed_list:", 0) == 0)
			state.cpusAllowed = line.substr(line.find_first_not_of(" \t", 18));
	return state;
}

// The seam for restores that fail: the kernel itself. A seccomp filter on the calling thread
// only makes its sched_setattr and sched_setaffinity calls (those on thread `onlyTid`, or every
// one with 0) return -errorCode without doing anything; errorCode 0 makes them claim success
// (a restore silently skipped). Production code has no hook for this.
void interceptSchedulingCalls(int errorCode, pid_t onlyTid = 0)
{
	std::vector<sock_filter> program = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setattr, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setaffinity, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	if (onlyTid != 0) {
		// The low half of the first argument (little-endian), which is the target thread.
		program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));
		program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(onlyTid), 1, 0));
		program.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	}
	program.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<uint32_t>(errorCode) & SECCOMP_RET_DATA)));
	sock_fprog filter{ static_cast<unsigned short>(program.size()), program.data() };
	ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ASSERT_EQ(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter), 0);
}

// Runs `body` on a new thread whose scheduling calls interceptSchedulingCalls(errorCode) turned off.
template<typename Body>
void withSchedulingCallsIntercepted(int errorCode, Body body)
{
	std::thread([&] {
		interceptSchedulingCalls(errorCode);
		body();
	}).join();
}

TEST(Actuator, TrackPinsToTheHomeCpu)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);

	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, DeadlineBoostMakesADeadlineTaskAndUnboostRestoresThePin)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	Status s = a.boost(t.tid(), 1'000'000);
	if (!s && s.error().code() == EPERM)
		GTEST_SKIP() << "no permission for real-time policies here";
	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(policyOf(t.tid()), a.fifoFallbackUsed() ? uint32_t(SCHED_FIFO) : uint32_t(SCHED_DEADLINE));

	ASSERT_TRUE(a.unboost(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_OTHER));
	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, DeadlineBoostHasTheBudgetAsRuntime)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	if (!a.boost(t.tid(), 500'000).ok() || a.fifoFallbackUsed())
		GTEST_SKIP() << "SCHED_DEADLINE is not available here";

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->runtime, 500'000u);
	EXPECT_EQ(attr->period, deadlineBoostPeriodNs(500'000));
}

TEST(Actuator, FifoBoostIsPinnedAtTheConfiguredPriority)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 7);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	Status s = a.boost(t.tid(), 1'000'000);
	if (!s && s.error().code() == EPERM)
		GTEST_SKIP() << "no permission for SCHED_FIFO here";
	ASSERT_TRUE(s.ok()) << s.error().message();

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->policy, uint32_t(SCHED_FIFO));
	EXPECT_EQ(attr->priority, 7u);
	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 0 });
}

TEST(Actuator, MoveWhileFifoBoostedRepinsNow)
{
	if (needsTwoCpus())
		GTEST_SKIP() << "needs two CPUs";
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 7);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	if (!a.boost(t.tid(), 1'000'000).ok())
		GTEST_SKIP() << "no permission for SCHED_FIFO here";

	ASSERT_TRUE(a.move(t.tid(), 1).ok());

	EXPECT_EQ(affinityOf(t.tid()), std::vector<int>{ 1 });
}

TEST(Actuator, DeprioritizeMakesTheThreadIdleClassUntilRestored)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	ASSERT_TRUE(a.deprioritize(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_IDLE));

	ASSERT_TRUE(a.restoreClass(t.tid()).ok());
	EXPECT_EQ(policyOf(t.tid()), uint32_t(SCHED_OTHER));
}

TEST(Actuator, DebtNiceIsAppliedOverTheOriginalNice)
{
	SpinThread t;
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());

	ASSERT_TRUE(a.setNice(t.tid(), 5).ok());

	auto attr = getSchedAttr(t.tid());
	ASSERT_TRUE(attr.ok());
	EXPECT_EQ(attr->nice, 5);
}

TEST(Actuator, UnknownThreadIsAnError)
{
	HostActuator a(BoostClass::Deadline, 10);

	Status s = a.boost(999999, 1000);

	ASSERT_FALSE(s.ok());
	EXPECT_EQ(s.error().code(), ESRCH);
}

TEST(Actuator, RestoreAllPutsEveryThreadBack)
{
	SpinThread t1, t2, t3;
	std::vector<int> original = affinityOf(t1.tid());
	HostActuator a(BoostClass::Deadline, 10);
	ASSERT_TRUE(a.track(t1.tid(), 0).ok());
	ASSERT_TRUE(a.track(t2.tid(), 0).ok());
	ASSERT_TRUE(a.track(t3.tid(), 0).ok());
	(void)a.boost(t1.tid(), 1'000'000);
	ASSERT_TRUE(a.deprioritize(t2.tid()).ok());
	ASSERT_TRUE(a.setNice(t3.tid(), 7).ok());

	a.restoreAll();

	for (const SpinThread *t : { &t1, &t2, &t3 }) {
		auto attr = getSchedAttr(t->tid());
		ASSERT_TRUE(attr.ok());
		EXPECT_EQ(attr->policy, uint32_t(SCHED_OTHER));
		EXPECT_EQ(attr->nice, 0);
		EXPECT_EQ(affinityOf(t->tid()), original);
	}
	EXPECT_EQ(a.tracked(), 0u);
}

TEST(Actuator, RestoredThreadReadsBackAsRecordedAndIsCounted)
{
	SpinThread t;
	const ProcSchedState original = procSchedState(t.tid());
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());
	ASSERT_TRUE(a.deprioritize(t.tid()).ok());
	ASSERT_NE(procSchedState(t.tid()), original);

	a.restoreAll();

	EXPECT_EQ(procSchedState(t.tid()), original);
	EXPECT_EQ(a.restores(), 1u);
	EXPECT_EQ(a.restoreMismatches(), 0u);
}

TEST(Actuator, RestoreTheKernelRefusesIsCountedAsAMismatch)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());

	withSchedulingCallsIntercepted(EPERM, [&] { a.restoreAll(); });

	EXPECT_EQ(a.restores(), 1u);
	EXPECT_EQ(a.restoreMismatches(), 1u);
	EXPECT_EQ(a.tracked(), 0u); // forgotten all the same: the originals cannot be applied later
}

TEST(Actuator, RestoreThatSilentlyDoesNothingIsAMismatchAndUntrackSaysSo)
{
	SpinThread t;
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t.tid(), 0).ok());
	ASSERT_TRUE(a.setNice(t.tid(), 7).ok());
	Status untracked;

	withSchedulingCallsIntercepted(0, [&] { untracked = a.untrack(t.tid()); });

	ASSERT_FALSE(untracked.ok());
	EXPECT_NE(untracked.error().message().find("reads back"), std::string::npos) << untracked.error().message();
	EXPECT_EQ(a.restoreMismatches(), 1u);
}

TEST(Actuator, ThreadThatExitedCountsAsNeitherRestoreNorMismatch)
{
	auto t = std::make_unique<SpinThread>();
	HostActuator a(BoostClass::Fifo, 10);
	ASSERT_TRUE(a.track(t->tid(), 0).ok());
	const pid_t tid = t->tid();
	t.reset(); // joined
	ASSERT_TRUE(test::waitUntilReaped(tid)); // its tid no longer exists

	a.restoreAll();

	EXPECT_EQ(a.restores(), 0u);
	EXPECT_EQ(a.restoreMismatches(), 0u);
}

TEST(Actuator, BoostGetsAStarvedThreadRunning)
{
	if (needsTwoCpus())
		GTEST_SKIP() << "needs two CPUs (the test runs on the other one)";
	// Keep this test's own thread off CPU 0, where a SCHED_FIFO hog starves a normal thread.
	cpu_set_t mine, other;
	sched_getaffinity(0, sizeof(mine), &mine);
	CPU_ZERO(&other);
	CPU_SET(1, &other);
	ASSERT_EQ(sched_setaffinity(0, sizeof(other), &other), 0);
	SpinThread hog, waiter;
	HostActuator a(BoostClass::Fifo, 20);
	ASSERT_TRUE(a.track(hog.tid(), 0).ok());
	ASSERT_TRUE(a.track(waiter.tid(), 0).ok());
	SchedAttr hogAttr;
	hogAttr.policy = SCHED_FIFO;
	hogAttr.priority = 5;
	if (!setSchedAttr(hog.tid(), hogAttr).ok()) {
		sched_setaffinity(0, sizeof(mine), &mine);
		GTEST_SKIP() << "no permission for SCHED_FIFO here";
	}
	std::this_thread::sleep_for(5ms);
	uint64_t before = waiter.loops();
	std::this_thread::sleep_for(20ms);
	bool starved = waiter.loops() == before; // unless RT throttling's 5% window hit just now

	ASSERT_TRUE(a.boost(waiter.tid(), 1'000'000).ok());
	uint64_t atBoost = waiter.loops();
	std::this_thread::sleep_for(20ms);
	uint64_t after = waiter.loops();

	a.restoreAll();
	sched_setaffinity(0, sizeof(mine), &mine);
	if (!starved)
		GTEST_SKIP() << "the waiter was not starved before the boost (RT throttling window)";
	EXPECT_GT(after, atBoost);
}

// ---- The Scheduler with its thread, on ticket-lock threads -----------------------------------

struct TicketVm {
	std::atomic<uint64_t> ticket{ 0 }, serving{ 0 };
	std::vector<std::unique_ptr<SpinThread>> threads;
	explicit TicketVm(unsigned n)
	{
		for (unsigned i = 0; i < n; ++i)
			threads.push_back(std::make_unique<SpinThread>(&ticket, &serving));
	}
};

uint64_t metric(const std::string &json, const std::string &name)
{
	// First occurrence is the VM totals.
	size_t pos = json.find("\"" + name + "\":");
	if (pos == std::string::npos)
		return 0;
	return std::stoull(json.substr(pos + name.size() + 3));
}

TEST(Scheduler, CoboostOnTicketLockThreadsBoostsAndRestoresEveryThread)
{
	SchedulerOptions o;
	o.policy = PolicyKind::Coboost;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	TicketVm vm(4); // two per CPU on a 2-CPU pool
	std::vector<int> original = affinityOf(vm.threads[0]->tid());
	int id = *(*s)->addVm("ticket", 4, nullptr);
	for (unsigned i = 0; i < 4; ++i)
		ASSERT_TRUE((*s)->attachVcpuThread(id, i, vm.threads[i]->tid()).ok());
	EXPECT_EQ(affinityOf(vm.threads[0]->tid()), std::vector<int>{ (*s)->poolCpus()[0] });
	ASSERT_TRUE((*s)->start().ok());

	std::string json;
	for (int i = 0; i < 200 && metric(json, "boosts") == 0; ++i) {
		(*s)->reportSpin(id, 0);
		std::this_thread::sleep_for(5ms);
		json.clear();
		(*s)->writeMetricsJson(json);
	}
	(*s)->stop();
	const HostBoostStats host = (*s)->metrics().host.boosts;

	EXPECT_GT(metric(json, "boosts"), 0u) << json;
	for (auto &t : vm.threads) {
		EXPECT_EQ(policyOf(t->tid()), uint32_t(SCHED_OTHER));
		EXPECT_EQ(affinityOf(t->tid()), original);
	}
	// Every vCPU thread once, and every return of the scheduler thread from SCHED_FIFO (every
	// rise has its return by the time stop() is done), each read back as recorded.
	EXPECT_EQ(host.restores, 4 + host.realtimeSwitches / 2);
	EXPECT_EQ(host.restoreMismatches, 0u);
}

TEST(Scheduler, SchedulerThreadsReturnFromFifoThatDoesNotHoldIsCounted)
{
	SchedulerOptions o;
	o.policy = PolicyKind::Coboost;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok()) << s.error().message();
	// The scheduler thread's sched_setattr calls on itself claim success and do nothing, so the
	// rise (made by this thread's reportSpin) holds and the return (made on the scheduler thread
	// when the boosts expire) does not. Spins are reported only once that thread runs: a boost
	// applied before it would have it rise by itself, skipped too, and the return read back right.
	std::atomic<bool> started{ false };
	(*s)->setThreadStartHook([&started] {
		interceptSchedulingCalls(0, static_cast<pid_t>(syscall(SYS_gettid)));
		started.store(true);
	});
	TicketVm vm(4);
	int id = *(*s)->addVm("ticket", 4, nullptr);
	for (unsigned i = 0; i < 4; ++i)
		ASSERT_TRUE((*s)->attachVcpuThread(id, i, vm.threads[i]->tid()).ok());
	ASSERT_TRUE((*s)->start().ok());
	while (!started.load())
		std::this_thread::yield();

	HostBoostStats host;
	for (int i = 0; i < 400 && host.restoreMismatches == 0; ++i) {
		if (host.realtimeSwitches == 0)
			(*s)->reportSpin(id, 0);
		std::this_thread::sleep_for(5ms);
		host = (*s)->metrics().host.boosts;
	}
	(*s)->stop();

	if (host.realtimeSwitches == 0)
		GTEST_SKIP() << "the scheduler thread never rose to SCHED_FIFO (no permission here?)";
	EXPECT_GT(host.restoreMismatches, 0u) << host.realtimeSwitches << " switches, " << host.restores << " restores";
}

TEST(Scheduler, LongSpinNotificationsReachThePolicyCore)
{
	for (bool epoll : { false, true }) {
		SchedulerOptions o;
		o.policy = PolicyKind::Express;
		o.detectPle = false;
		o.forceEpoll = epoll;
		auto s = Scheduler::create(o, {});
		ASSERT_TRUE(s.ok()) << s.error().message();
		int id = *(*s)->addVm("pv", 2, nullptr);
		ASSERT_TRUE((*s)->start().ok());

		std::string json;
		for (int i = 0; i < 200 && metric(json, "pv_accepted") == 0; ++i) {
			(*s)->notifyLongSpin(id, 0, 1, 7);
			std::this_thread::sleep_for(5ms);
			json.clear();
			(*s)->writeMetricsJson(json);
		}
		(*s)->stop();

		EXPECT_GT(metric(json, "pv_accepted"), 0u) << json;
		EXPECT_NE(json.find(epoll ? "\"event_loop\":\"epoll\"" : "\"event_loop\":\""), std::string::npos);
	}
}

TEST(Scheduler, NotificationForUnknownVmOrVcpuIsIgnored)
{
	SchedulerOptions o;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok());
	int id = *(*s)->addVm("pv", 2, nullptr);

	(*s)->notifyLongSpin(id, 2, 0, 0);
	(*s)->notifyLongSpin(-1, 0, 0, 0);
	(*s)->notifyLongSpin(Scheduler::kMaxVms + 3, 0, 0, 0);
	(*s)->tickNow();

	std::string json;
	(*s)->writeMetricsJson(json);
	EXPECT_EQ(metric(json, "pv_accepted"), 0u);
}

TEST(Scheduler, AttachRejectsBadVcpuAndSecondThread)
{
	SchedulerOptions o;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok());
	SpinThread t;
	int id = *(*s)->addVm("a", 1, nullptr);

	EXPECT_FALSE((*s)->attachVcpuThread(id, 1, t.tid()).ok());
	EXPECT_FALSE((*s)->attachVcpuThread(id + 1, 0, t.tid()).ok());
	ASSERT_TRUE((*s)->attachVcpuThread(id, 0, t.tid()).ok());
	EXPECT_FALSE((*s)->attachVcpuThread(id, 0, t.tid()).ok());
}

TEST(Scheduler, StoppedVmThreadsAreRestored)
{
	SchedulerOptions o;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok());
	SpinThread t;
	std::vector<int> original = affinityOf(t.tid());
	int id = *(*s)->addVm("a", 1, nullptr);
	ASSERT_TRUE((*s)->attachVcpuThread(id, 0, t.tid()).ok());

	(*s)->vmStopped(id);

	EXPECT_EQ(affinityOf(t.tid()), original);
}

TEST(Scheduler, DetachedThreadIsRestoredAndForgotten)
{
	SchedulerOptions o;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok());
	SpinThread t;
	std::vector<int> original = affinityOf(t.tid());
	int id = *(*s)->addVm("a", 1, nullptr);
	ASSERT_TRUE((*s)->attachVcpuThread(id, 0, t.tid()).ok());

	(*s)->detachVcpuThread(id, 0);

	EXPECT_EQ(affinityOf(t.tid()), original);
	// Forgotten: the same vCPU can take a new thread.
	EXPECT_TRUE((*s)->attachVcpuThread(id, 0, t.tid()).ok());
}

TEST(Scheduler, AddVmRejectsZeroVcpus)
{
	SchedulerOptions o;
	o.detectPle = false;
	auto s = Scheduler::create(o, {});
	ASSERT_TRUE(s.ok());

	EXPECT_FALSE((*s)->addVm("empty", 0, nullptr).ok());
	EXPECT_FALSE((*s)->addVm("huge", 100000, nullptr).ok());
}

} // namespace
} // namespace spindle::sched

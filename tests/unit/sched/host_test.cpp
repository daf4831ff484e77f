// Host-side pieces that need no scheduler thread: /proc parsing and reading, running/runnable
// classification, pool checks, PLE helpers, the trace format and both event-loop backends.

#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "sched/event_loop.h"
#include "sched/observer.h"
#include "sched/ple.h"
#include "sched/scheduler.h"
#include "sched/trace.h"
#include "tests/support/proc_threads.h"

namespace spindle::sched {
namespace {

// ---- /proc parsing ---------------------------------------------------------------------------

std::string statLine(const std::string &comm, char state, int cpu)
{
	// pid (comm) state, then fields 4..38 as zeros, field 39 = cpu, then a few more.
	std::string line = "1234 (" + comm + ") " + state;
	for (int field = 4; field <= 38; ++field)
		line += " 0";
	line += " " + std::to_string(cpu) + " 0 0 0\n";
	return line;
}

TEST(ProcStat, StateAndProcessorAreParsed)
{
	auto s = parseProcStat(statLine("vcpu0", 'R', 1));

	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(s->state, 'R');
	EXPECT_EQ(s->cpu, 1);
}

TEST(ProcStat, CommandNameWithSpacesAndParenthesesIsSkipped)
{
	auto s = parseProcStat(statLine("a) S 7 (b", 'S', 3));

	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(s->state, 'S');
	EXPECT_EQ(s->cpu, 3);
}

TEST(ProcStat, TruncatedLineIsRejected)
{
	EXPECT_FALSE(parseProcStat("1234 (x) R 0 0 0").ok());
	EXPECT_FALSE(parseProcStat("garbage").ok());
	EXPECT_FALSE(parseProcStat("").ok());
}

TEST(ProcStat, OwnThreadCanBeSampled)
{
	auto s = sampleThread(gettid());

	ASSERT_TRUE(s.ok()) << s.error().message();
	EXPECT_EQ(s->state, 'R');
	EXPECT_GE(s->cpu, 0);
	EXPECT_GT(s->runtimeNs, 0u);
}

TEST(ProcStat, RuntimeAloneMatchesTheFullSample)
{
	auto files = ThreadProcFiles::open(gettid());
	ASSERT_TRUE(files.ok()) << files.error().message();
	auto sample = files->sample();
	ASSERT_TRUE(sample.ok());

	auto runtime = files->runtimeNs();

	ASSERT_TRUE(runtime.ok()) << runtime.error().message();
	EXPECT_GE(*runtime, sample->runtimeNs); // read later, of a running thread
	EXPECT_LT(*runtime - sample->runtimeNs, 50'000'000u);
}

TEST(ProcStat, RuntimeOfAnExitedThreadIsAnError)
{
	pid_t tid = 0;
	std::optional<Result<ThreadProcFiles>> files;
	std::thread([&] {
		tid = gettid();
		files.emplace(ThreadProcFiles::open(tid));
	}).join();
	ASSERT_TRUE(files->ok()) << files->error().message();
	ASSERT_TRUE(test::waitUntilReaped(tid));

	auto runtime = (*files)->runtimeNs();

	EXPECT_FALSE(runtime.ok());
}

TEST(ProcStat, SchedstatRuntimeIsTheFirstField)
{
	auto r = parseSchedstatRuntime("123456 789 10\n");

	ASSERT_TRUE(r.ok());
	EXPECT_EQ(*r, 123456u);
	EXPECT_FALSE(parseSchedstatRuntime("x y z").ok());
}

TEST(Classify, BusiestRunnableThreadPerCpuIsRunningOthersRunnable)
{
	std::vector<ClassifyInput> in = {
		{ { 'R', 0, 0 }, 100 }, { { 'R', 0, 0 }, 900 }, { { 'S', 0, 0 }, 0 }, { { 'R', 1, 0 }, 0 },
	};

	std::vector<VcpuState> out = classify(in);

	EXPECT_EQ(out[0], VcpuState::Runnable);
	EXPECT_EQ(out[1], VcpuState::Running);
	EXPECT_EQ(out[2], VcpuState::Halted);
	EXPECT_EQ(out[3], VcpuState::Running);
}

// ---- Pool ------------------------------------------------------------------------------------

TEST(Pool, OfflineCpuIsRejected)
{
	auto pool = checkPoolCpus({ 0, 5 }, { 0, 1 }, { 0, 1 });

	ASSERT_FALSE(pool.ok());
	EXPECT_NE(pool.error().message().find("CPU 5"), std::string::npos);
}

TEST(Pool, CpuOutsideTheProcessAffinityIsRejected)
{
	auto pool = checkPoolCpus({ 1 }, { 0, 1 }, { 0 });

	ASSERT_FALSE(pool.ok());
	EXPECT_NE(pool.error().message().find("affinity"), std::string::npos);
}

TEST(Pool, EmptyPoolMeansEveryUsableCpu)
{
	auto pool = checkPoolCpus({}, { 0, 1, 2 }, { 1, 2, 3 });

	ASSERT_TRUE(pool.ok());
	EXPECT_EQ(*pool, (std::vector<int>{ 1, 2 }));
}

TEST(Pool, DuplicatesAreRemoved)
{
	auto pool = checkPoolCpus({ 1, 0, 1 }, { 0, 1 }, { 0, 1 });

	ASSERT_TRUE(pool.ok());
	EXPECT_EQ(*pool, (std::vector<int>{ 0, 1 }));
}

TEST(Pool, ThisMachineRejectsANonexistentCpu)
{
	EXPECT_FALSE(checkPoolCpus({ 4000 }).ok());
}

TEST(SchedulerCreate, InvalidOptionsAreRejected)
{
	SchedulerOptions o;
	o.spinLow = 9;
	o.spinHigh = 1;

	EXPECT_FALSE(Scheduler::create(o, {}).ok());
}

TEST(SchedulerCreate, UnwritableTracePathIsRejected)
{
	SchedulerOptions o;
	o.tracePath = "/nonexistent-dir/trace.jsonl";

	auto s = Scheduler::create(o, {});

	ASSERT_FALSE(s.ok());
	EXPECT_NE(s.error().message().find("trace"), std::string::npos);
}

// ---- PLE helpers -----------------------------------------------------------------------------

TEST(Ple, VendorIsReadFromCpuinfo)
{
	EXPECT_EQ(parseCpuVendor("processor\t: 0\nvendor_id\t: GenuineIntel\n"), CpuVendor::Intel);
	EXPECT_EQ(parseCpuVendor("vendor_id\t: AuthenticAMD\n"), CpuVendor::Amd);
	EXPECT_EQ(parseCpuVendor("vendor_id\t: SomethingElse\n"), CpuVendor::Unknown);
	EXPECT_EQ(parseCpuVendor(""), CpuVendor::Unknown);
}

TEST(Ple, FilterSelectsThePauseExitReasonOfTheVendor)
{
	EXPECT_EQ(*pauseExitFilter(CpuVendor::Intel), "exit_reason == 40");
	EXPECT_EQ(*pauseExitFilter(CpuVendor::Amd), "exit_reason == 119");
	EXPECT_FALSE(pauseExitFilter(CpuVendor::Unknown).ok());
}

TEST(Ple, ExitsOfAQuietTickAreScaledToTheFastTicksRate)
{
	EXPECT_EQ(pauseExitsPerTick(80, 10'000'000, 1'000'000), 8u);
	EXPECT_EQ(pauseExitsPerTick(1, 10'000'000, 1'000'000), 1u) << "one exit still counts";
	EXPECT_EQ(pauseExitsPerTick(0, 10'000'000, 1'000'000), 0u);
}

TEST(Ple, ExitsOfAFastTickAreLeftAsCounted)
{
	EXPECT_EQ(pauseExitsPerTick(80, 1'000'000, 1'000'000), 80u);
	EXPECT_EQ(pauseExitsPerTick(80, 400'000, 1'000'000), 80u) << "an early tick is not scaled up";
}

TEST(Ple, MissingTracepointIsAClearError)
{
	auto id = kvmExitTracepointId();
	if (id.ok())
		GTEST_SKIP() << "this host has the kvm:kvm_exit tracepoint (id " << *id << ")";

	EXPECT_NE(id.error().message().find("kvm:kvm_exit"), std::string::npos);
}

// ---- Trace -----------------------------------------------------------------------------------

TEST(Trace, LineIsOneJsonObjectWithLatency)
{
	TraceRecord r{ 42, "boost", { 1, 2 }, "coboost", 1000 };

	std::string line = TraceWriter::format(r, 1500, 1);

	EXPECT_EQ(line, "{\"t_ns\":42,\"ev\":\"boost\",\"vm\":1,\"vcpu\":2,\"detail\":\"coboost\",\"value\":1000,"
			"\"latency_ns\":1500,\"ok\":true}");
}

// ---- Event loops -----------------------------------------------------------------------------

void expectDispatch(bool forceEpoll)
{
	auto loop = EventLoop::create(forceEpoll);
	ASSERT_TRUE(loop.ok()) << loop.error().message();
	UniqueFd efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	int calls = 0;
	ASSERT_TRUE((*loop)->add(efd.get(), [&] {
		uint64_t v;
		ASSERT_EQ(::read(efd.get(), &v, sizeof(v)), 8);
		++calls;
	}).ok());
	uint64_t one = 1;

	for (int round = 0; round < 3; ++round) {
		ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
		ASSERT_TRUE((*loop)->runOnce(1000).ok());
	}

	EXPECT_EQ(calls, 3); // re-armed after each dispatch
}

TEST(EventLoop, EpollBackendDispatchesReadyFds)
{
	expectDispatch(true);
}

TEST(EventLoop, IoUringBackendDispatchesReadyFds)
{
	auto loop = EventLoop::create(false);
	ASSERT_TRUE(loop.ok());
	if (std::string((*loop)->backend()) != "io_uring")
		GTEST_SKIP() << "io_uring is unavailable here (fell back to " << (*loop)->backend() << ")";

	expectDispatch(false);
}

TEST(EventLoop, ForcedEpollReportsEpoll)
{
	auto loop = EventLoop::create(true);

	ASSERT_TRUE(loop.ok());
	EXPECT_STREQ((*loop)->backend(), "epoll");
}

TEST(EventLoop, NothingReadyReturnsAfterTheTimeout)
{
	for (bool epoll : { true, false }) {
		auto loop = EventLoop::create(epoll);
		ASSERT_TRUE(loop.ok());
		UniqueFd efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
		bool called = false;
		ASSERT_TRUE((*loop)->add(efd.get(), [&] { called = true; }).ok());

		EXPECT_TRUE((*loop)->runOnce(10).ok());
		EXPECT_FALSE(called) << (*loop)->backend();
	}
}

} // namespace
} // namespace spindle::sched

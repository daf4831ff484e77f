#include "vmm/runtime/seccomp_filter.h"

#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace spindle {

namespace {

// Every role: memory, locks, signals, time, thread exit, logging to an open fd. glibc's malloc,
// stdio and pthreads make these calls on their own, and a filter that broke them would break
// everything else first.
const char *const kBase[] = {
	"read", "write", "writev", "close", "futex", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect",
	"rt_sigreturn", "rt_sigprocmask", "sigaltstack", "exit", "exit_group", "gettid", "getpid", "tgkill",
	"clock_gettime", "clock_nanosleep", "nanosleep", "sched_yield", "restart_syscall", "getrandom",
	"set_robust_list", "rseq", "fstat", "newfstatat", "lseek",
};

// vCPU threads: KVM_RUN and reading registers (a crash report), the eventfd that wakes the
// scheduler on a long-spin record (write, in the base), and what detaching from the scheduler
// does on the way out (restore its own scheduling, close its /proc and perf fds).
// timer_settime/timer_delete/timer_create: boost alarms (sched/boost_alarm.h) armed, disarmed,
// renewed or freed when this thread applies the scheduler's actions on its way out; the alarm's
// handler only calls sched_setattr/sched_setaffinity on the thread itself.
const char *const kVcpu[] = {"sched_setattr", "sched_getattr", "sched_setaffinity", "sched_getaffinity",
			     "setpriority", "getpriority", "timer_settime", "timer_delete", "timer_create"};

// The scheduler thread: its event loop (io_uring or epoll), timers, /proc reads with pread on
// files opened before, the PAUSE counters (read), and steering the vCPU threads. No open of a
// new path, no execve, no fork.
const char *const kScheduler[] = {"io_uring_enter", "epoll_wait", "epoll_pwait", "pread64", "timerfd_settime",
				  "sched_setattr", "sched_getattr", "sched_setaffinity", "sched_getaffinity",
				  "setpriority", "getpriority", "sched_setscheduler", "sched_getscheduler",
				  "sched_getparam", "sched_setparam", "timer_settime", "timer_delete", "timer_create"};

// The console writer: poll, then write (in the base).
const char *const kConsole[] = {"poll", "ppoll"};

// The main thread once the VMs run: it waits, kicks vCPU threads out of KVM_RUN, joins them,
// restores every thread's scheduling, reads its own memory figures for --stats and writes the
// output files, which it opens only then.
// ftruncate: the Perfetto trace is one JSON document, rewritten whole when the run ends.
const char *const kMain[] = {"poll",	 "ppoll",	   "openat",	      "unlink",		  "mincore",
			     "sched_setattr", "sched_getattr", "sched_setaffinity", "sched_getaffinity", "setpriority",
			     "getpriority",   "rt_sigaction",  "ioctl",	      "fcntl",		  "umask",
			     "ftruncate",     "timer_settime", "timer_delete", "timer_create"};

std::atomic<int> *gStopFlag = nullptr;
thread_local ThreadRole tRole = ThreadRole::Main;
// Names of the system calls by number, resolved before any filter is loaded: the SIGSYS handler
// may only write.
std::vector<std::string> gNames;
std::once_flag gSetUp;

void appendNumber(char *&out, long value)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = static_cast<char>('0' + value % 10);
		value /= 10;
	} while (value > 0 && n < 20);
	while (n > 0)
		*out++ = digits[--n];
}

void onViolation(int, siginfo_t *info, void *context)
{
	const int saved = errno;
	const int nr = info->si_syscall;
	char line[256];
	char *out = line;
	auto append = [&](std::string_view text) {
		const size_t room = sizeof(line) - 2 - static_cast<size_t>(out - line);
		const size_t n = text.size() < room ? text.size() : room;
		std::memcpy(out, text.data(), n);
		out += n;
	};
	append("spindle: error: seccomp: the ");
	append(threadRoleName(tRole));
	append(" thread called ");
	append(nr >= 0 && static_cast<size_t>(nr) < gNames.size() && !gNames[nr].empty() ? std::string_view(gNames[nr])
											: std::string_view("system call"));
	append(" (");
	appendNumber(out, nr);
	append("), which its filter forbids: stopping every VM");
	*out++ = '\n';
	ssize_t written = ::write(STDERR_FILENO, line, static_cast<size_t>(out - line));
	(void)written;
	// The call fails with EPERM instead of running; the run stops at its next check.
	static_cast<ucontext_t *>(context)->uc_mcontext.gregs[REG_RAX] = -EPERM;
	if (gStopFlag)
		gStopFlag->store(kSeccompStopValue);
	errno = saved;
}

void setUpOnce()
{
	std::call_once(gSetUp, [] {
		gNames.resize(512);
		for (int nr = 0; nr < 512; ++nr)
			if (char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr)) {
				gNames[nr] = name;
				free(name);
			}
		struct sigaction action {};
		action.sa_sigaction = onViolation;
		action.sa_flags = SA_SIGINFO;
		sigemptyset(&action.sa_mask);
		sigaction(SIGSYS, &action, nullptr);
	});
}

template<size_t N>
Status allow(scmp_filter_ctx ctx, const char *const (&names)[N])
{
	for (const char *name : names) {
		const int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR)
			continue; // not on this architecture or libseccomp: nothing to allow
		if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc < 0)
			return Error(-rc, std::string("seccomp: allowing ") + name);
	}
	return {};
}

Status allowIoctl(scmp_filter_ctx ctx, unsigned long request)
{
	// Spelled out, not SCMP_A1(): that macro is a C compound literal, which clang rejects in C++.
	const scmp_arg_cmp requestIs{.arg = 1, .op = SCMP_CMP_EQ, .datum_a = request, .datum_b = 0};
	if (int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &requestIs); rc < 0)
		return Error(-rc, "seccomp: allowing ioctl " + std::to_string(request));
	return {};
}

} // namespace

std::string_view threadRoleName(ThreadRole role)
{
	switch (role) {
	case ThreadRole::Vcpu: return "vCPU";
	case ThreadRole::Scheduler: return "scheduler";
	case ThreadRole::Console: return "console";
	case ThreadRole::Main: return "main";
	}
	return "?";
}

Result<SeccompMode> parseSeccompMode(std::string_view text)
{
	if (text == "on")
		return SeccompMode::On;
	if (text == "log")
		return SeccompMode::Log;
	if (text == "off")
		return SeccompMode::Off;
	return Error::invalid("--seccomp: '" + std::string(text) + "' is not on, log or off");
}

void setSeccompStopFlag(std::atomic<int> *flag)
{
	gStopFlag = flag;
}

Status installSeccompFilter(ThreadRole role, SeccompMode mode)
{
	if (mode == SeccompMode::Off)
		return {};
	setUpOnce();
	tRole = role;
	scmp_filter_ctx ctx = seccomp_init(mode == SeccompMode::On ? SCMP_ACT_TRAP : SCMP_ACT_LOG);
	if (!ctx)
		return Error(ENOMEM, "seccomp_init");
	Status status = allow(ctx, kBase);
	// The roles that open nothing get EACCES for an open instead of a trap: glibc's malloc
	// reads /proc/sys/vm/overcommit_memory once, from whichever thread first shrinks a heap,
	// and copes with the failure; a trap would end the run for glibc's housekeeping.
	if (status && role != ThreadRole::Main)
		if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0); rc < 0)
			status = Error(-rc, "seccomp: refusing openat");
	switch (role) {
	case ThreadRole::Vcpu:
		if (status)
			status = allow(ctx, kVcpu);
		for (unsigned long request : {static_cast<unsigned long>(KVM_RUN), static_cast<unsigned long>(KVM_GET_REGS),
					      static_cast<unsigned long>(KVM_GET_SREGS)})
			if (status)
				status = allowIoctl(ctx, request);
		break;
	case ThreadRole::Scheduler:
		if (status)
			status = allow(ctx, kScheduler);
		// The sampling detector backs its rate off and restores it.
		if (status)
			status = allowIoctl(ctx, PERF_EVENT_IOC_PERIOD);
		break;
	case ThreadRole::Console:
		if (status)
			status = allow(ctx, kConsole);
		break;
	case ThreadRole::Main:
		if (status)
			status = allow(ctx, kMain);
		break;
	}
	if (status)
		if (int rc = seccomp_load(ctx); rc < 0)
			status = Error(-rc, "seccomp_load (" + std::string(threadRoleName(role)) + " thread)");
	seccomp_release(ctx);
	return status;
}

std::optional<ThreadRole> seccompSelfTestRole()
{
	const char *text = std::getenv("SPINDLE_SECCOMP_SELFTEST");
	if (!text)
		return std::nullopt;
	for (ThreadRole role : {ThreadRole::Vcpu, ThreadRole::Scheduler, ThreadRole::Console, ThreadRole::Main}) {
		std::string name(threadRoleName(role));
		for (char &c : name)
			c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
		if (name == text)
			return role;
	}
	return std::nullopt;
}

void seccompSelfTest(ThreadRole role, SeccompMode mode)
{
	if (mode != SeccompMode::Off && seccompSelfTestRole() == role)
		(void)syscall(SYS_getppid); // in no allow-list
}

Status seccompAvailable()
{
	Status result;
	std::thread probe([&] { result = installSeccompFilter(ThreadRole::Main, SeccompMode::Log); });
	probe.join();
	return result;
}

} // namespace spindle

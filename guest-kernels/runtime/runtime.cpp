// The guest runtime (see runtime.h). Freestanding: no C library, no constructors (all state is
// constant-initialised, checked by `constinit`), no SSE.

#include "guest-kernels/runtime/runtime.h"

#include <stdarg.h>

#include "guest-kernels/locks/tas.h"
#include "guest-kernels/runtime/format.h"

// The VMM enters every vCPU here in long mode with RSP 16-byte aligned at the top of its stack,
// RDI = vCPU index, RSI = boot info GPA. Those are already the first two SysV arguments, and the
// CALL leaves RSP as a C++ function expects it, so the entry is just a call. RBP is cleared so a
// debugger's backtrace ends here; CLD because the ABI wants DF clear and the VMM may not promise it.
asm(R"(
	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	xorl %ebp, %ebp
	cld
	call spindleRuntimeEntry
1:	pause
	jmp 1b
	.size _start, . - _start
	.text

	/* The image runs in ring 0 and in ring 3 (guest-kernels/README.md, "The image"). */
	.section .note.spindle, "a", @note
	.balign 4
	.long 8                 /* namesz: "Spindle" and its NUL */
	.long 4                 /* descsz */
	.long 1                 /* SPINDLE_NOTE_GUEST_MODES */
	.asciz "Spindle"
	.balign 4
	.long 3                 /* SPINDLE_GUEST_MODE_F_RING0 | SPINDLE_GUEST_MODE_F_RING3 */
	.text
)");

// The compiler may emit calls to these even in freestanding code (struct copies, zeroing).
extern "C" {

void *memcpy(void *dest, const void *src, size_t n)
{
	void *d = dest;
	asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dest;
}

void *memset(void *dest, int value, size_t n)
{
	void *d = dest;
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
	return dest;
}

void *memmove(void *dest, const void *src, size_t n)
{
	auto *d = static_cast<unsigned char *>(dest);
	auto *s = static_cast<const unsigned char *>(src);
	if (d <= s || d >= s + n)
		return memcpy(dest, src, n);
	while (n--)
		d[n] = s[n];
	return dest;
}

int memcmp(const void *a, const void *b, size_t n)
{
	auto *x = static_cast<const unsigned char *>(a);
	auto *y = static_cast<const unsigned char *>(b);
	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

[[noreturn]] void spindleRuntimeEntry(uint64_t cpu, uint64_t bootGpa);

} // extern "C"

namespace spindle::guest {

namespace {

// Written by every vCPU at entry with the same values from the shared boot info, hence relaxed
// atomics rather than "vCPU 0 initialises, everyone waits for it" (which would stall all vCPUs
// behind a possibly preempted vCPU 0).
struct RuntimeState {
	uint64_t mailboxGpa;
	uint64_t hintGpa;
	uint64_t tscKhz;
	uint64_t serialGpa;
	uint64_t pvGpa;
	uint32_t hintStride;
	uint32_t spinThreshold;
};

// The device addresses start at the ABI's values so that a vCPU whose boot info is bad can
// still say why on the console; every vCPU then takes them from the boot info.
constinit RuntimeState g_state = { 0, 0, 0, SPINDLE_SERIAL_MMIO_GPA, SPINDLE_PV_MMIO_GPA, 0, 0 };
constinit uint64_t g_longSpins[SPINDLE_MAX_VCPUS] = {};
constinit uint64_t g_pvWaits[SPINDLE_MAX_VCPUS] = {};
// TAS is unenlightened, so the console lock never writes hints or sends notifications.
constinit locks::TasLock<GuestLockPlatform> g_consoleLock;

template<typename T>
T loadState(const T &field)
{
	return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

template<typename T>
void storeState(T &field, T value)
{
	__atomic_store_n(&field, value, __ATOMIC_RELAXED);
}

// Why the boot info cannot be trusted, or nullptr if it can.
const char *checkBootInfo(uint64_t cpu, uint64_t bootGpa)
{
	if (bootGpa == 0 || bootGpa % 8 != 0)
		return "boot info address is null or misaligned";
	const auto &b = *reinterpret_cast<const spindle_boot_info *>(bootGpa);
	if (b.magic != SPINDLE_BOOT_MAGIC)
		return "bad magic";
	if (b.version < SPINDLE_BOOT_VERSION)
		return "unsupported version";
	if (b.size < sizeof(spindle_boot_info))
		return "size smaller than struct spindle_boot_info";
	if (b.vcpu_count < 1 || b.vcpu_count > SPINDLE_MAX_VCPUS)
		return "vcpu_count out of range";
	if (cpu >= b.vcpu_count)
		return "vCPU index (RDI) not below vcpu_count";
	if (b.mem_size < SPINDLE_MIN_MEM_BYTES || b.mem_size > SPINDLE_MAX_MEM_BYTES)
		return "mem_size out of range";
	if (bootGpa + sizeof(spindle_boot_info) > b.mem_size)
		return "boot info lies outside RAM";
	if (b.args_len >= SPINDLE_BOOT_ARGS_MAX || b.args[b.args_len] != '\0')
		return "args not NUL-terminated at args_len";
	if (b.mem_map_count > SPINDLE_BOOT_MEM_MAP_MAX)
		return "mem_map_count out of range";
	if (b.mailbox_gpa % 8 != 0 || b.mailbox_gpa + uint64_t{ b.vcpu_count } * SPINDLE_MAILBOX_SIZE > b.mem_size)
		return "mailboxes misaligned or outside RAM";
	if (b.hint_stride < sizeof(spindle_hint_slot) || b.hint_stride % 4 != 0 || b.hint_gpa % 4 != 0 ||
	    b.hint_gpa + uint64_t{ b.vcpu_count } * b.hint_stride > b.mem_size)
		return "hint slots misaligned or outside RAM";
	// Version 2: the devices answer on MMIO, in the hole below 1 MiB.
	if (b.serial_mmio_gpa < SPINDLE_MMIO_HOLE_GPA || b.serial_mmio_gpa >= SPINDLE_KERNEL_MIN_GPA ||
	    b.pv_mmio_gpa < SPINDLE_MMIO_HOLE_GPA || b.pv_mmio_gpa >= SPINDLE_KERNEL_MIN_GPA || b.pv_mmio_gpa % 4 != 0)
		return "device MMIO addresses outside the MMIO hole";
	if (b.guest_mode != currentCpl())
		return "guest_mode differs from the privilege level the vCPU runs at";
	return nullptr;
}

// The CPUID leaf as boot info repeats it (CPUID itself returns the host's values to a ring-3
// guest under PVM). Notifications need the long-spin feature bit; 0 means "never".
uint32_t readSpinThreshold(const spindle_boot_info &boot)
{
	return (boot.cpuid_features & SPINDLE_CPUID_F_LONG_SPIN) ? boot.spin_threshold : 0;
}

struct HeaderOnlyRecord {
	spindle_pv_header header;
};

// Zeroes this vCPU's mailbox for a record of type Record and fills in the header.
template<typename Record>
Record *beginRecord(uint32_t cpu, spindle_pv_type type)
{
	auto *record = reinterpret_cast<Record *>(loadState(g_state.mailboxGpa) + uint64_t{ cpu } * SPINDLE_MAILBOX_SIZE);
	memset(record, 0, sizeof(Record));
	record->header.magic = SPINDLE_PV_MAGIC;
	record->header.type = static_cast<uint16_t>(type);
	record->header.length = static_cast<uint16_t>(sizeof(Record));
	return record;
}

// The MMIO write traps to the host, which reads the mailbox before the vCPU continues, so the
// mailbox is free again when this returns.
void submit(const spindle_pv_header &header)
{
	mmioWrite32(loadState(g_state.pvGpa), header.length);
}

// Asks the host to stop this vCPU (what HLT does in ring 0, and cannot do in ring 3).
[[noreturn]] void haltVcpu(uint32_t cpu)
{
	submit(beginRecord<HeaderOnlyRecord>(cpu, SPINDLE_PV_HALT)->header);
	parkForever();
}

} // namespace

void print(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	size_t n = formatV(line, sizeof(line), fmt, ap);
	va_end(ap);

	// The console lock is a plain TAS lock: its vCPU index is only passed to pause().
	g_consoleLock.acquire(0);
	const uint64_t thr = loadState(g_state.serialGpa);
	for (size_t i = 0; i < n; i++)
		mmioWrite8(thr, static_cast<uint8_t>(line[i]));
	g_consoleLock.release(0);
}

void pvReady(uint32_t cpu)
{
	submit(beginRecord<HeaderOnlyRecord>(cpu, SPINDLE_PV_READY)->header);
}

void pvExit(uint32_t cpu, int32_t code)
{
	auto *record = beginRecord<spindle_pv_exit>(cpu, SPINDLE_PV_EXIT);
	record->code = code;
	submit(record->header);
}

void pvError(uint32_t cpu, const char *text)
{
	auto *record = beginRecord<spindle_pv_error>(cpu, SPINDLE_PV_ERROR);
	// The host wants printable ASCII, NUL-terminated within the array.
	for (size_t i = 0; text[i] && i + 1 < SPINDLE_PV_ERROR_TEXT_MAX; i++)
		record->text[i] = (text[i] >= ' ' && text[i] <= '~') ? text[i] : '?';
	submit(record->header);
}

void pvLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins)
{
	auto *record = beginRecord<spindle_pv_long_spin>(cpu, SPINDLE_PV_LONG_SPIN);
	record->lock_id = lockId;
	record->waits_on = waitsOn;
	record->spins = spins;
	submit(record->header);
}

void pvResultVcpu(uint32_t cpu, const spindle_pv_result_vcpu &result)
{
	auto *record = beginRecord<spindle_pv_result_vcpu>(cpu, SPINDLE_PV_RESULT_VCPU);
	spindle_pv_header header = record->header;
	*record = result;
	record->header = header;
	submit(record->header);
}

void pvResultVm(uint32_t cpu, const spindle_pv_result_vm &result)
{
	auto *record = beginRecord<spindle_pv_result_vm>(cpu, SPINDLE_PV_RESULT_VM);
	spindle_pv_header header = record->header;
	*record = result;
	record->header = header;
	submit(record->header);
}

void pvWait(uint32_t cpu, const volatile uint32_t *word, uint32_t expected, uint64_t timeoutNs)
{
	// Only this vCPU writes its own counter.
	g_pvWaits[cpu]++;
	auto *record = beginRecord<spindle_pv_wait>(cpu, SPINDLE_PV_WAIT);
	// Identity-mapped: the address is the GPA the host reads.
	record->word_gpa = reinterpret_cast<uint64_t>(word);
	record->expected = expected;
	record->timeout_ns = timeoutNs;
	submit(record->header);
}

void pvKick(uint32_t cpu, uint32_t target)
{
	auto *record = beginRecord<spindle_pv_kick>(cpu, SPINDLE_PV_KICK);
	record->vcpu = target;
	submit(record->header);
}

void idleUntil(uint32_t cpu, const TscClock &clock, uint64_t until)
{
	const uint64_t gap = clock.fromNs(kMinWaitGapNs);
	for (uint64_t now = rdtsc(); now < until; now = rdtsc()) {
		pvWait(cpu, nullptr, 0, clock.toNs(until - now));
		uint64_t after = rdtsc();
		// Returned sooner than a park is worth: do not come straight back.
		if (after < until && after - now < gap)
			busyUntil(now + gap < until ? now + gap : until);
	}
}

uint64_t pvWaits(uint32_t cpu)
{
	return g_pvWaits[cpu];
}

void exitVm(uint32_t cpu, int32_t code)
{
	pvExit(cpu, code);
	haltVcpu(cpu);
}

void failVm(uint32_t cpu, int32_t code, const char *fmt, ...)
{
	char text[SPINDLE_PV_ERROR_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	formatV(text, sizeof(text), fmt, ap);
	va_end(ap);
	print("error: %s\n", text);
	pvError(cpu, text);
	exitVm(cpu, code);
}

bool tscClock(TscClock &clock)
{
	uint64_t khz = loadState(g_state.tscKhz);
	if (khz == 0)
		return false;
	clock.khz = khz;
	return true;
}

uint32_t GuestLockPlatform::spinThreshold()
{
	return loadState(g_state.spinThreshold);
}

spindle_hint_slot *GuestLockPlatform::hintSlot(uint32_t cpu)
{
	return reinterpret_cast<spindle_hint_slot *>(loadState(g_state.hintGpa) +
						     uint64_t{ cpu } * loadState(g_state.hintStride));
}

void GuestLockPlatform::notifyLongSpin(uint32_t cpu, uint32_t lockId, uint32_t waitsOn, uint64_t spins)
{
	// Only this vCPU writes its own counter.
	g_longSpins[cpu]++;
	pvLongSpin(cpu, lockId, waitsOn, spins);
}

uint64_t longSpins(uint32_t cpu)
{
	return g_longSpins[cpu];
}

} // namespace spindle::guest

extern "C" void spindleRuntimeEntry(uint64_t cpu, uint64_t bootGpa)
{
	using namespace spindle::guest;

	if (const char *problem = checkBootInfo(cpu, bootGpa)) {
		// Without trustworthy boot info there is no mailbox to report through: say it on the
		// serial port and stop.
		print("spindle guest: vCPU %lu: bad boot info at 0x%lx: %s\n", cpu, bootGpa, problem);
		parkForever();
	}
	const auto &boot = *reinterpret_cast<const spindle_boot_info *>(bootGpa);
	auto index = static_cast<uint32_t>(cpu);

	storeState(g_state.mailboxGpa, boot.mailbox_gpa);
	storeState(g_state.hintGpa, boot.hint_gpa);
	storeState(g_state.hintStride, boot.hint_stride);
	storeState(g_state.tscKhz, boot.tsc_khz);
	storeState(g_state.serialGpa, boot.serial_mmio_gpa);
	storeState(g_state.pvGpa, boot.pv_mmio_gpa);
	storeState(g_state.spinThreshold, readSpinThreshold(boot));

	// Start from a clean hint slot: nothing held, waiting on nobody.
	spindle_hint_slot *slot = GuestLockPlatform::hintSlot(index);
	__atomic_store_n(&slot->locks_held, 0, __ATOMIC_RELAXED);
	spindle::locks::hint::clearWaiting(slot);

	pvReady(index);
	guestMain(index, boot);
	haltVcpu(index);
}

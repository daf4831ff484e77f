/* Spindle guest ABI: boot protocol, PV device records, CPUID leaves and the per-vCPU hint page.
 *
 * Shared by the VMM (C++) and by freestanding guests (C or C++ with -ffreestanding), so it uses
 * only <stdint.h> and fixed-width fields with explicit padding. guest-kernels/README.md explains it
 * in prose; change both together, and bump the version of whatever structure changes.
 *
 * Every value the host reads from guest memory through these structures is untrusted and
 * validated by the host; every value the guest reads from the host (boot info) is bounds-checked
 * by the guest runtime as well. */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Guest physical memory map (all addresses identity-mapped, 2 MiB pages) ---------------- */
#define SPINDLE_GDT_GPA            0x00001000u /* GDT used at boot (flat 64-bit code + data) */
#define SPINDLE_BOOT_INFO_GPA      0x00002000u /* struct spindle_boot_info, one page */
#define SPINDLE_MAILBOX_GPA        0x00010000u /* per-vCPU PV mailboxes, SPINDLE_MAILBOX_SIZE each */
#define SPINDLE_MAILBOX_SIZE       512u
#define SPINDLE_HINT_GPA           0x00050000u /* per-vCPU hint slots, SPINDLE_HINT_STRIDE each */
#define SPINDLE_HINT_STRIDE        64u
#define SPINDLE_PAGE_TABLE_GPA     0x00060000u /* PML4, PDPT, then one PD per GiB of RAM */
#define SPINDLE_PAGE_TABLE_END     0x000a0000u /* room for PML4 + PDPT + 62 PDs */
#define SPINDLE_MMIO_HOLE_GPA      0x000a0000u /* no RAM from here to 1 MiB: device MMIO (version 2) */
#define SPINDLE_SERIAL_MMIO_GPA    0x000d0000u /* the 16550's 8 registers, one byte each */
#define SPINDLE_PV_MMIO_GPA        0x000d1000u /* PV doorbell: a 32-bit write submits the mailbox */
#define SPINDLE_KERNEL_MIN_GPA     0x00100000u /* ELF segments must lie at or above 1 MiB */
#define SPINDLE_STACK_SIZE         0x4000u     /* per-vCPU stack, carved from the top of RAM */
#define SPINDLE_MAX_VCPUS          256u        /* mailbox and hint areas are sized for this */
#define SPINDLE_MAX_MEM_BYTES      (62ull << 30)
#define SPINDLE_MIN_MEM_BYTES      (4ull << 20)

/* ---- Boot info (RSI at entry points here; RDI holds the vCPU index) ------------------------- */
#define SPINDLE_BOOT_MAGIC         0x49425053u /* "SPBI" little-endian */
#define SPINDLE_BOOT_VERSION       2u
#define SPINDLE_BOOT_ARGS_MAX      2048u
#define SPINDLE_BOOT_MEM_MAP_MAX   8u

enum spindle_mem_type {
	SPINDLE_MEM_USABLE = 1,   /* free RAM the guest may use (heap) */
	SPINDLE_MEM_RESERVED = 2, /* boot structures, mailboxes, hints, page tables */
	SPINDLE_MEM_KERNEL = 3,   /* loaded ELF segments */
	SPINDLE_MEM_STACKS = 4,   /* per-vCPU stacks */
};

struct spindle_mem_region {
	uint64_t base;
	uint64_t size;
	uint32_t type; /* enum spindle_mem_type */
	uint32_t reserved;
};

struct spindle_boot_info {
	uint32_t magic;         /* SPINDLE_BOOT_MAGIC */
	uint16_t version;       /* SPINDLE_BOOT_VERSION; fields are only ever appended */
	uint16_t size;          /* sizeof(struct spindle_boot_info) as the host wrote it */
	uint32_t vcpu_count;    /* 1..SPINDLE_MAX_VCPUS */
	uint32_t flags;         /* SPINDLE_BOOT_F_* */
	uint64_t mem_size;      /* bytes of guest RAM starting at GPA 0 */
	uint64_t tsc_khz;       /* from KVM_GET_TSC_KHZ; 0 if unknown */
	uint64_t mailbox_gpa;   /* SPINDLE_MAILBOX_GPA */
	uint64_t hint_gpa;      /* SPINDLE_HINT_GPA */
	uint32_t hint_stride;   /* SPINDLE_HINT_STRIDE */
	uint32_t spin_threshold; /* same value as CPUID 0x40000001 EBX */
	uint32_t mem_map_count; /* valid entries in mem_map */
	uint32_t args_len;      /* bytes in args, excluding the terminating NUL */
	struct spindle_mem_region mem_map[SPINDLE_BOOT_MEM_MAP_MAX];
	char args[SPINDLE_BOOT_ARGS_MAX]; /* guest arguments joined by single spaces, NUL-terminated */
	/* ---- version 2 (offset 2304) ---- */
	uint32_t guest_mode;      /* SPINDLE_GUEST_RING0 or SPINDLE_GUEST_RING3: the CPL at entry */
	uint32_t cpuid_version;   /* what CPUID 0x40000001 EAX says (a ring-3 guest's CPUID is the host's) */
	uint32_t cpuid_features;  /* what CPUID 0x40000001 ECX says: SPINDLE_CPUID_F_* */
	uint32_t reserved2;
	uint64_t serial_mmio_gpa; /* SPINDLE_SERIAL_MMIO_GPA */
	uint64_t pv_mmio_gpa;     /* SPINDLE_PV_MMIO_GPA */
};

#define SPINDLE_BOOT_F_PV_HINTS    (1u << 0) /* the host reads the hint page */

#define SPINDLE_GUEST_RING0        0u
#define SPINDLE_GUEST_RING3        3u

/* ---- Ports -------------------------------------------------------------------------------- */
#define SPINDLE_SERIAL_PORT        0x3f8u /* 16550-compatible COM1; the guest writes THR */
#define SPINDLE_PV_PORT            0x0510u /* out32: submit the record in this vCPU's mailbox */
#define SPINDLE_PV_PORT_COUNT      4u      /* the bytes of that one 32-bit port: 0x510-0x513 */

/* ---- PV records (guest -> host) -----------------------------------------------------------
 * The guest fills its own mailbox (SPINDLE_MAILBOX_GPA + vcpu * SPINDLE_MAILBOX_SIZE) with a
 * record and writes the record's total length (header included) as a 32-bit OUT to
 * SPINDLE_PV_PORT. The host reads the mailbox of the vCPU that made the access (never a vCPU
 * index from the guest), validates magic, type, length and every field, and counts and drops a
 * malformed record. */
#define SPINDLE_PV_MAGIC           0x52565053u /* "SPVR" */

enum spindle_pv_type {
	SPINDLE_PV_READY = 1,       /* the vCPU is up; no payload */
	SPINDLE_PV_EXIT = 2,        /* the guest is done: struct spindle_pv_exit */
	SPINDLE_PV_ERROR = 3,       /* the guest rejects its input: struct spindle_pv_error */
	SPINDLE_PV_LONG_SPIN = 4,   /* a spin wait passed the threshold: struct spindle_pv_long_spin */
	SPINDLE_PV_RESULT_VCPU = 5, /* per-vCPU benchmark results: struct spindle_pv_result_vcpu */
	SPINDLE_PV_RESULT_VM = 6,   /* whole-VM benchmark results: struct spindle_pv_result_vm */
	SPINDLE_PV_HALT = 7,        /* this vCPU is done (HLT for a ring-3 guest); no payload */
	SPINDLE_PV_WAIT = 8,        /* block this vCPU until kicked or timed out: struct spindle_pv_wait */
	SPINDLE_PV_KICK = 9,        /* wake a waiting vCPU: struct spindle_pv_kick */
	SPINDLE_PV_TYPE_MAX = 9,
};

struct spindle_pv_header {
	uint32_t magic;  /* SPINDLE_PV_MAGIC */
	uint16_t type;   /* enum spindle_pv_type */
	uint16_t length; /* total bytes, header included; must equal the OUT value */
};

struct spindle_pv_exit {
	struct spindle_pv_header header;
	int32_t code; /* 0..255 is passed on as spindle's exit status */
	uint32_t reserved;
};

#define SPINDLE_PV_ERROR_TEXT_MAX  192u
struct spindle_pv_error {
	struct spindle_pv_header header;
	char text[SPINDLE_PV_ERROR_TEXT_MAX]; /* NUL-terminated within the array; printable ASCII */
};

struct spindle_pv_long_spin {
	struct spindle_pv_header header;
	uint32_t lock_id;      /* guest-chosen lock identifier */
	uint32_t waits_on;     /* vCPU index the spinner waits on, or SPINDLE_VCPU_NONE */
	uint64_t spins;        /* iterations spun so far */
};
#define SPINDLE_VCPU_NONE          0xffffffffu

/* WAIT and KICK: a vCPU that has nothing to do but wait for a sibling leaves the CPU, the way
 * Linux's pv_wait()/pv_kick() do (KVM_HC_KICK_CPU), except that the host parks the vCPU thread
 * outside KVM_RUN rather than halting it in the kernel.
 *
 * WAIT: the host parks the sending vCPU until the first of
 *   - a KICK naming it, from any vCPU of the VM;
 *   - timeout_ns (0, or anything above SPINDLE_PV_WAIT_MAX_NS, means SPINDLE_PV_WAIT_MAX_NS);
 *   - the VM stopping.
 * It returns at once, without parking, when
 *   - a KICK for this vCPU arrived since its last WAIT (the host keeps one pending kick per vCPU;
 *     the WAIT consumes it; more kicks while one is pending are counted and dropped), or
 *   - word_gpa != 0 and the u32 there no longer equals `expected` (read by the host after the
 *     record arrived, so a releaser that changed the word and kicked too early is not missed).
 * Every return is a wake-up the guest must treat as possibly spurious: re-check its own
 * condition and wait again if it still holds. A host that does not implement WAIT (or drops the
 * record) returns at once, which is legal: waiters then degrade to spinning.
 * word_gpa must be 0 or a 4-byte aligned GPA of guest RAM (not the MMIO hole); reserved must be
 * 0. A record that breaks either rule is malformed (counted, dropped: the WAIT returns at once). */
#define SPINDLE_PV_WAIT_MAX_NS     100000000ull /* 100 ms: the longest a WAIT may park */

struct spindle_pv_wait {
	struct spindle_pv_header header;
	uint64_t word_gpa;   /* 0 = no condition; else 4-byte aligned GPA of a u32 in guest RAM */
	uint32_t expected;   /* park only while *word_gpa == expected */
	uint32_t reserved;   /* 0 */
	uint64_t timeout_ns; /* 0 = the host's cap (SPINDLE_PV_WAIT_MAX_NS); larger is capped */
};

/* KICK: wakes `vcpu` if it is parked in a WAIT, else leaves it one pending kick (see above).
 * vcpu must be below vcpu_count (kicking oneself is allowed: it only makes the next WAIT
 * return at once); reserved must be 0. The host rate-limits the kicks each vCPU sends; a kick
 * over the limit is counted and dropped, so a waiter must never rely on one kick alone: its
 * WAIT has a timeout. */
struct spindle_pv_kick {
	struct spindle_pv_header header;
	uint32_t vcpu;     /* the vCPU to wake, < vcpu_count */
	uint32_t reserved; /* 0 */
};

/* Benchmark modes and lock kinds as reported in results. */
enum spindle_bench_mode { SPINDLE_MODE_LOCK = 1, SPINDLE_MODE_BARRIER = 2, SPINDLE_MODE_CPU = 3 };
enum spindle_lock_kind {
	SPINDLE_LOCK_NONE = 0,
	SPINDLE_LOCK_TICKET = 1,
	SPINDLE_LOCK_TAS = 2,
	SPINDLE_LOCK_TTAS = 3,
	SPINDLE_LOCK_MCS = 4,
	SPINDLE_LOCK_QSPIN = 5,
	SPINDLE_LOCK_PVTICKET = 6,
	SPINDLE_LOCK_PVHALT = 7,   /* ticket lock whose waiters PV-WAIT after spinning; releaser kicks */
	SPINDLE_LOCK_KIND_MAX = 7,
};

#define SPINDLE_LATENCY_BUCKETS    40u /* bucket i counts latencies in [2^i, 2^(i+1)) ns; 0 -> [0,2) */

struct spindle_pv_result_vcpu {
	struct spindle_pv_header header;
	uint32_t mode;          /* enum spindle_bench_mode */
	uint32_t reserved;
	uint64_t ops;           /* acquisitions, barrier rounds or work units done by this vCPU */
	uint64_t spin_iters;    /* pause-loop iterations spent waiting */
	uint64_t long_spins;    /* long-spin notifications sent */
	uint64_t latency_ns_hist[SPINDLE_LATENCY_BUCKETS]; /* acquisition (or barrier wait) latency */
};

struct spindle_pv_result_vm {
	struct spindle_pv_header header;
	uint32_t mode;          /* enum spindle_bench_mode */
	uint32_t lock;          /* enum spindle_lock_kind (SPINDLE_LOCK_NONE for cpu) */
	uint64_t duration_ns;   /* measured wall time of the run, from the TSC */
	uint64_t total_ops;     /* sum over vCPUs as counted by the guest */
	uint64_t shared_counter; /* the non-atomic counter incremented in every critical section */
	uint64_t cs_ns;         /* critical-section length asked for */
	uint64_t think_ns;      /* think time asked for */
};

/* ---- ELF note: what the image can run in -------------------------------------------------
 * A PT_NOTE segment may hold a note with name "Spindle" (namesz 8, NUL included), type
 * SPINDLE_NOTE_GUEST_MODES and a 4-byte descriptor: SPINDLE_GUEST_MODE_F_* bits. Without it, the
 * image is a ring-0 guest (the version 1 ABI), and `--guest-mode auto` boots it in ring 0. */
#define SPINDLE_NOTE_NAME          "Spindle"
#define SPINDLE_NOTE_GUEST_MODES   1u
#define SPINDLE_GUEST_MODE_F_RING0 (1u << 0)
#define SPINDLE_GUEST_MODE_F_RING3 (1u << 1)

/* ---- CPUID leaves -------------------------------------------------------------------------
 * 0x40000000: EAX = highest Spindle leaf (0x40000001), EBX ECX EDX = "SpindleSpind" ("Spin" "dleS"
 *             "pind").
 * 0x40000001: EAX = interface version (1), EBX = recommended spin threshold (iterations before a
 *             long-spin notification), ECX = feature bits SPINDLE_CPUID_F_*, EDX = 0. */
#define SPINDLE_CPUID_BASE         0x40000000u
#define SPINDLE_CPUID_FEATURES     0x40000001u
#define SPINDLE_CPUID_SIG_EBX      0x6e697053u /* "Spin" */
#define SPINDLE_CPUID_SIG_ECX      0x53656c64u /* "dleS" */
#define SPINDLE_CPUID_SIG_EDX      0x646e6970u /* "pind" */
#define SPINDLE_CPUID_VERSION      1u
#define SPINDLE_CPUID_F_PV_DEVICE  (1u << 0)
#define SPINDLE_CPUID_F_LONG_SPIN  (1u << 1)
#define SPINDLE_CPUID_F_HINTS      (1u << 2)
#define SPINDLE_DEFAULT_SPIN_THRESHOLD 2048u

/* ---- Per-vCPU hint slot (guest writes, host reads without an exit) -------------------------
 * At hint_gpa + vcpu * hint_stride. Update rules (the guest, on its own slot only):
 *   - on acquiring a spinlock: locks_held += 1, then seq += 1;
 *   - on releasing: locks_held -= 1, then seq += 1;
 *   - on starting to wait: waiting_on = holder (or next-in-line) vCPU, waiting_lock = lock id,
 *     then seq += 1; on finishing the wait: waiting_on = SPINDLE_VCPU_NONE, seq += 1.
 * All fields are naturally aligned 32-bit stores (atomic on x86). The host treats every value
 * as a hint: it bounds-checks waiting_on and caps locks_held, and never trusts it for safety. */
struct spindle_hint_slot {
	uint32_t seq;          /* bumped after every change, so the host can tell a slot moved */
	uint32_t locks_held;   /* spinlocks this vCPU holds now */
	uint32_t waiting_on;   /* vCPU index waited on, or SPINDLE_VCPU_NONE */
	uint32_t waiting_lock; /* lock id waited on (valid while waiting_on != NONE) */
	uint32_t reserved[12];
};

#ifdef __cplusplus
} /* extern "C" */
static_assert(sizeof(struct spindle_hint_slot) == SPINDLE_HINT_STRIDE, "hint slot size");
static_assert(sizeof(struct spindle_boot_info) <= 4096, "boot info fits one page");
static_assert(__builtin_offsetof(struct spindle_boot_info, guest_mode) == 2304, "version 2 fields are appended");
static_assert(SPINDLE_PAGE_TABLE_END <= SPINDLE_MMIO_HOLE_GPA, "page tables end before the MMIO hole");
static_assert(sizeof(struct spindle_pv_result_vcpu) <= SPINDLE_MAILBOX_SIZE, "mailbox size");
static_assert(sizeof(struct spindle_pv_wait) == 32, "WAIT record layout");
static_assert(__builtin_offsetof(struct spindle_pv_wait, timeout_ns) == 24, "WAIT record layout");
static_assert(sizeof(struct spindle_pv_kick) == 16, "KICK record layout");
static_assert(SPINDLE_MAILBOX_GPA + SPINDLE_MAX_VCPUS * SPINDLE_MAILBOX_SIZE <= SPINDLE_HINT_GPA,
	      "mailboxes end before hints");
static_assert(SPINDLE_HINT_GPA + SPINDLE_MAX_VCPUS * SPINDLE_HINT_STRIDE <= SPINDLE_PAGE_TABLE_GPA,
	      "hints end before page tables");
#endif
